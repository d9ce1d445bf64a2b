"""SparseGrowPlugin(budget=...): the model stays within its parameter budget."""

import re

import pytest
import torch
from avalanche.training import Naive
from torch import nn

from plugin_streams import quiet_evaluator, synthetic_stream
from sparsegrow.errors import ConfigError
from sparsegrow.growth import count_parameters
from sparsegrow.plugins import SparseGrowPlugin


def _mlp_trained_with(sg):
    """A 2×16 MLP (seeded) and a Naive strategy training it with ``sg``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 16),
                          nn.ReLU(), nn.Linear(16, 4))
    return model, Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                        train_mb_size=32, train_epochs=1, plugins=[sg],
                        evaluator=quiet_evaluator())


def test_a_grown_mlp_never_exceeds_its_budget_and_spends_it_over_the_stream():
    """Plugin level: every experience grows (the data asks for more than its share), the model
    stays within the budget, and the last experience reaches close to it."""
    stream = synthetic_stream(n_experiences=4)
    sg = SparseGrowPlugin(budget=3.0, growth={"units": 40, "grow_at": 0.0})
    model, strategy = _mlp_trained_with(sg)
    initial = count_parameters(model)
    sizes = []
    for experience in stream.train_stream:
        strategy.train(experience)
        sizes.append(count_parameters(model))
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert sizes[-1] <= 3 * initial
    assert sizes[-1] > 0.9 * 3 * initial
    with pytest.raises(ConfigError, match="budget must be a positive number"):
        SparseGrowPlugin(budget=-2)


def test_blocks_keep_their_zeros_lock_their_rows_and_count_only_what_can_be_non_zero():
    """lateral: false. Every growth event's block trains during its experience and is then
    bit-identical through the later ones; its structural zeros stay exactly zero; the budget
    counts the model's parameters less those zeros, and the blocks buy more units than dense
    growth within the same budget."""
    stream = synthetic_stream(n_experiences=4)
    grown = {}
    for lateral in (True, False):
        sg = SparseGrowPlugin(budget=3.0, growth={"units": 40, "lateral": lateral})
        model, strategy = _mlp_trained_with(sg)
        initial = count_parameters(model)
        snapshots = []
        for experience in stream.train_stream:
            strategy.train(experience)
            snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
            in_use = sg.growth.parameters_in_use(model)
            assert in_use <= 3 * initial
        grown[lateral] = model[3].weight.shape[0]
        if lateral:
            assert in_use == count_parameters(model)
            continue
        zero = (model[3].weight == 0).sum().item()
        assert count_parameters(model) - in_use == zero > 0   # fc2's pattern, nothing else
        w2 = model[3].weight
        starts = [e["widths"]["3"] for e in sg.growth.history]   # fc2's width after each event
        # a block trained in its experience, then never moved (bit-identical) in the later ones
        first_block = slice(16, starts[0])
        assert not torch.equal(snapshots[1]["3.weight"][first_block],
                               w2.new_zeros(w2[first_block].shape))
        then = snapshots[1]["3.weight"][first_block]
        for later in snapshots[2:]:
            assert torch.equal(later["3.weight"][first_block, :then.shape[1]], then)
            assert not later["3.weight"][first_block, then.shape[1]:].any()   # later blocks
            assert torch.equal(later["1.weight"][16:starts[0]],
                               snapshots[1]["1.weight"][16:starts[0]])
    assert grown[False] > grown[True]


@pytest.mark.parametrize("kwargs, message", [
    ({"op": "deepen", "init": "random", "lateral": False},
     "lateral: false grows blocks of units, which only op widen adds (op is 'deepen')"),
    ({"units": None, "lateral": False}, "lateral: false grows blocks of a fixed size: set units"),
    ({"units": 4, "lateral": "no"}, "lateral must be true or false, got 'no'"),
])
def test_blocks_refuse_what_they_cannot_grow_in_one_line(kwargs, message):
    from sparsegrow.plugins import GrowthPlugin

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        GrowthPlugin(**kwargs)
