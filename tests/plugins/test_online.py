"""On Avalanche's online streams the plugin grows and protects per real experience, not per
mini-experience."""

import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.training import Naive

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.growth import count_parameters
from sparsegrow.plugins import SparseGrowPlugin


def _run(experiences, **options):
    torch.manual_seed(0)
    model = mlp()
    plugin = SparseGrowPlugin(**(options or {"growth": {"birth_gate": True}}))
    updates = []
    update = plugin.freezing.subspace.update
    plugin.freezing.subspace.update = lambda *a, **k: (updates.append(1), update(*a, **k))
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                     train_mb_size=16, train_epochs=1, plugins=[plugin],
                     evaluator=quiet_evaluator())
    for exp in experiences:
        strategy.train(exp)
    return plugin, model, len(updates)


def test_growth_and_protection_once_per_original_experience():
    stream = synthetic_stream(n_experiences=3, n_train=64)
    # 4 sub-experiences of 16 samples each: Avalanche's is_last_subexp is never set here
    online = split_online_stream(stream.train_stream, experience_size=16)
    assert len(list(online)) == 12
    plugin, model, updates = _run(online)
    offline, offline_model, offline_updates = _run(stream.train_stream)
    assert len(plugin.growth.history) == len(offline.growth.history) == 2   # after the first
    assert [e["experience"] for e in plugin.growth.history] == [1, 2]
    assert updates == offline_updates == 3
    assert len(plugin.growth.gate.prototypes) == 3
    assert count_parameters(model) > count_parameters(mlp())


def test_the_budget_is_spread_over_the_real_experiences_left():
    stream = synthetic_stream(n_experiences=3, n_train=64)
    options = {"growth": {"units": 40, "grow_at": 0.0}, "budget": 2.0}
    online = split_online_stream(stream.train_stream, experience_size=16)
    _, model, _ = _run(online, **options)
    _, offline_model, _ = _run(stream.train_stream, **options)
    # 12 mini-experiences must not be read as 12 events each taking a share of the budget
    assert count_parameters(model) == count_parameters(offline_model) > count_parameters(mlp())
