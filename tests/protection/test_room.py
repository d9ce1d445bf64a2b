import pytest

from sparsegrow.protection.room import units_for_room


def test_units_for_room_hand_computed():
    # 100 columns, 90 protected: 10% free. 30% free needs 90 / 0.7 = 128.57 columns → 29 units
    assert units_for_room(100, 90, 0.3) == 29
    assert (100 + 29 - 90) / (100 + 29) >= 0.3 > (100 + 28 - 90) / (100 + 28)
    # a conv consumer with 3×3 kernels gains 9 columns per producer channel: ceil(28.57 / 9)
    assert units_for_room(100, 90, 0.3, per_unit=9) == 4
    assert units_for_room(100, 50, 0.3) == 0          # already 50% free
    assert units_for_room(100, 90, 0.0) == 0
    with pytest.raises(ValueError, match="min_free"):
        units_for_room(100, 90, 1.0)
