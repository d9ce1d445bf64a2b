import pytest

from sparsegrow.bench.plugins_pmnist import parse_method, summarise
from sparsegrow.errors import ConfigError


def test_summary_metrics_match_hand_computation():
    matrix = [[0.90], [0.80, 0.95], [0.70, 0.85, 0.99]]
    out = summarise(matrix)
    assert out["ACC"] == pytest.approx(100 * (0.70 + 0.85 + 0.99) / 3, abs=0.01)
    assert out["LA"] == pytest.approx(100 * (0.90 + 0.95 + 0.99) / 3, abs=0.01)
    assert out["BWT"] == pytest.approx(100 * ((0.70 - 0.90) + (0.85 - 0.95)) / 2, abs=0.01)
    assert out["Forgetting"] == pytest.approx(100 * ((0.90 - 0.70) + (0.95 - 0.85)) / 2, abs=0.01)


def test_method_parsing():
    assert parse_method('sg=sparsegrow:{"gating": "mask"}') == ("sg", "sparsegrow",
                                                                 {"gating": "mask"})
    assert parse_method("naive=naive") == ("naive", "naive", {})
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_method("sg=sparsegrow:{gating: mask}")
    with pytest.raises(ConfigError, match="must look like label=kind"):
        parse_method("sparsegrow")
