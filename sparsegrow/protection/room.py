"""Input room under subspace protection: how many producer units give a consumer back a
given fraction of free (unprotected) input dimensions.

Subspace protection freezes a layer's response on the span of its old inputs, so what the layer
can still learn lives in the complement. Widening the producer that feeds a consumer adds input
dimensions on which the old inputs were zero (the new units start silent on them): those
dimensions are entirely free. The first layer's input space (the data) cannot grow; every layer
fed by an expandable producer can.
"""

from __future__ import annotations

import math


def units_for_room(columns: int, protected: int, min_free: float, *, per_unit: int = 1) -> int:
    """Fewest producer units that leave at least ``min_free`` of the consumer's input free.

    Adding ``m`` units adds ``m · per_unit`` free columns (``per_unit`` = kernel positions for a
    conv consumer, H·W for conv→flatten→linear), so we need
    ``columns + m·per_unit − protected ≥ min_free · (columns + m·per_unit)``.

    :param columns: the consumer's input columns now.
    :param protected: directions of its input basis.
    :param min_free: target free fraction in [0, 1).
    :param per_unit: consumer input columns per producer unit.
    :return: units to add (0 if the room is already there).
    """
    if not 0.0 <= min_free < 1.0:
        raise ValueError(f"min_free must be in [0, 1), got {min_free}")
    needed = protected / (1.0 - min_free) - columns       # columns still missing
    return max(0, math.ceil(needed / per_unit - 1e-9))
