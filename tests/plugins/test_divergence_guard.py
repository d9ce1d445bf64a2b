"""The plugins' divergence guard in a plain Avalanche script (the runner's is tested in
tests/runner/test_divergence.py)."""

import pytest
import torch
from avalanche.training import Naive

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.divergence import DivergenceGuard
from sparsegrow.errors import ConfigError, DivergenceError
from sparsegrow.linalg import thin_svd
from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin


def _naive(model, plugins, lr):
    return Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                 train_mb_size=16, train_epochs=1, plugins=plugins,
                 evaluator=quiet_evaluator())


def test_a_huge_learning_rate_stops_with_one_line_naming_the_first_bad_iteration():
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=2)
    plugin = SparseGrowPlugin()
    strategy = _naive(mlp(), [plugin], lr=1e6)
    with pytest.raises(DivergenceError) as info:        # not LAPACK's LinAlgError
        for exp in stream.train_stream:
            strategy.train(exp)
    message = str(info.value)
    assert "\n" not in message
    # read at the experience's end (iteration 8), reported from the device's record of the
    # first bad iteration: one step at lr 1e6 explodes the loss
    assert message.startswith("experience 0, iteration 1 (epoch 0): training loss exploded to ")
    assert strategy.clock.train_exp_iterations == 8
    assert "likely cause: the learning rate (sgd, lr=1e+06)" in message


def test_one_guard_observes_for_every_plugin_of_the_strategy():
    runner_guard = DivergenceGuard()
    plugin, freezing = SparseGrowPlugin(), FreezingPlugin()
    growth = GrowthPlugin()
    strategy = _naive(mlp(), [runner_guard, plugin, growth, freezing], lr=0.01)
    strategy.train(synthetic_stream(n_experiences=1).train_stream[0])
    guards = [plugin.growth.divergence, plugin.freezing.divergence, growth.divergence,
              freezing.divergence]
    assert runner_guard.leads and not any(g.leads for g in guards)
    assert all(g._verdict is None for g in guards)          # nothing observed twice


def test_thin_svd_refuses_a_non_finite_matrix_in_one_line():
    a = torch.ones(3, 5)
    a[1, 2] = float("nan")
    with pytest.raises(DivergenceError, match=r"^a \[3, 5\] matrix of growth or protection has "
                                              r"non-finite entries: training diverged;"):
        thin_svd(a)


@pytest.mark.parametrize("kwargs, message", [
    (dict(loss_factor=0.5), "loss_factor must be a number ≥ 1, got 0.5"),
    (dict(check_every=0), "check_every must be a positive integer, got 0")])
def test_bad_guard_arguments_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        DivergenceGuard(**kwargs)
