"""`sparsegrow bench routing`: the birth gate's judge recorded over a stream as the plugin does."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "plugins"))
from plugin_streams import synthetic_stream  # noqa: E402

from sparsegrow.bench.routing import routing  # noqa: E402


@pytest.mark.parametrize("permute", [True, False])
def test_the_judge_routes_home_only_where_experiences_differ_in_their_inputs(permute):
    gate = routing(synthetic_stream(n_experiences=3, permute=permute).train_stream)
    assert len(gate.routing) == 3 and gate.routing[0] == 1.0
    if permute:   # a new permutation each experience: every input goes home
        assert gate.routing == [1.0, 1.0, 1.0]
    else:         # new draws of one distribution: a coin toss between the means
        assert max(gate.routing[1:]) < 0.8
