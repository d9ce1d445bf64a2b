"""BatchNorm treatment under protection, and the fallback for parameters no subspace covers."""

import logging

import pytest
import torch
import torch.nn as nn
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive

from plugin_streams import quiet_evaluator, synthetic_stream
from sparsegrow.errors import ConfigError
from sparsegrow.plugins import FreezingPlugin, SparseGrowPlugin


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 4))


def _train(model, plugins, n_experiences=3, after_each=None):
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=16, train_epochs=1, plugins=plugins,
                     evaluator=quiet_evaluator())
    for exp in synthetic_stream(n_experiences=n_experiences, n_train=64).train_stream:
        strategy.train(exp)
        if after_each is not None:
            after_each(model)


def _bn_state(model):
    return {f"{n}.{a}": getattr(m, a).detach().clone() for n, m in model.named_modules()
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))
            for a in ("weight", "bias", "running_mean", "running_var")}


@pytest.mark.parametrize("mode", ["free", "freeze"])
def test_freeze_keeps_every_batchnorm_channel_bit_identical_after_its_first_experience(mode):
    model = _cnn()
    states = []
    sg = SparseGrowPlugin(growth={"units": None, "min_units": 2}, protection={"batchnorm": mode})
    _train(model, [sg], after_each=lambda m: states.append(_bn_state(m)))
    first, last = states[0], states[-1]
    assert sg.growth.history   # channels were added: old ones are the leading slices
    same = [torch.equal(last[k][: v.shape[0]], v) for k, v in first.items()]
    assert all(same) if mode == "freeze" else not any(same)


class _BatchMeans(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.means = []

    def before_training_iteration(self, strategy, **kwargs):
        self.means.append(strategy.mb_x.mean().item())


def test_cumulative_statistics_average_every_batch_of_every_experience():
    model = _cnn()
    record = _BatchMeans()
    _train(model, [record, FreezingPlugin(gating="subspace", batchnorm="cumulative")])
    assert model[0].momentum is None and len(record.means) == 12
    expected = torch.tensor(record.means, dtype=torch.float64).mean()
    assert abs(model[0].running_mean.item() - expected.item()) < 1e-6


def test_parameters_no_subspace_covers_get_masks_said_once(caplog):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.LayerNorm(8), nn.ReLU(),
                          nn.Linear(8, 4))
    plugin = FreezingPlugin(gating="subspace")
    snapshots = []

    def check(m):
        params = dict(m.named_parameters())
        for name, (mask, values) in (snapshots[-1] if snapshots else {}).items():
            assert torch.equal(params[name].detach()[mask], values), name
        snapshots.append({n: (f.clone(), params[n].detach()[f].clone())
                          for n, f in plugin.locks.frozen.items()})

    with caplog.at_level(logging.WARNING, logger="sparsegrow.plugins.freezing"):
        _train(model, [plugin], after_each=check)
    assert set(plugin.locks.frozen) == {"2.weight", "2.bias"}
    assert set(plugin.subspace.bases) == {"1", "4"}
    # 8 entries, 30% of the free ones per experience: round(2.4) + round(1.8) + round(1.2) = 5
    assert plugin.frozen_fraction() == {"2.weight": 5 / 8, "2.bias": 5 / 8}
    said = [r.getMessage() for r in caplog.records]
    assert said == ["subspace gating cannot protect 2 parameter(s) (2.weight, 2.bias): they get "
                    "frozen masks by taylor importance instead"]


def test_bad_batchnorm_option_fails_at_construction():
    with pytest.raises(ConfigError, match="batchnorm must be one of free, freeze, cumulative, "
                                          "got 'thaw'"):
        SparseGrowPlugin(protection={"batchnorm": "thaw"})
