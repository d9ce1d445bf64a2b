"""No host synchronisation in the plugins' per-iteration callbacks.

On CUDA, reading a tensor's value on the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, a boolean-mask select whose size depends on the data) waits for every kernel queued
so far, which stalls the step. The plugins may do that once per experience or growth event, never
every iteration. The CPU cannot observe a sync, so these tests count the Python calls that would
cause one while the plugins' per-iteration callbacks run (the strategy's own calls are not
counted).
"""

from contextlib import contextmanager

import pytest
import torch
from avalanche.training import Naive

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin

PER_ITERATION = ("before_training_iteration", "before_forward", "after_forward",
                 "before_backward", "after_backward", "before_update", "after_update",
                 "after_training_iteration")
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


class SyncCensus:
    """Counts host reads of tensor values made inside a plugin's per-iteration callbacks."""

    def __init__(self, monkeypatch, plugin):
        self.inside = False
        self.iterations: list[dict] = []   # per iteration: {"reads": [...], "growth": bool}
        for name in HOST_READS:
            self._count(monkeypatch, torch.Tensor, name)
        getitem = torch.Tensor.__getitem__

        def masked_getitem(tensor, index):   # t[bool_mask]: the result's size is data
            indices = index if isinstance(index, tuple) else (index,)
            if self.inside and any(torch.is_tensor(i) and i.dtype == torch.bool for i in indices):
                self.iterations[-1]["reads"].append("boolean-mask select")
            return getitem(tensor, index)

        monkeypatch.setattr(torch.Tensor, "__getitem__", masked_getitem)
        for name in ("nonzero", "masked_select", "unique"):
            self._count(monkeypatch, torch, name)
        for name in PER_ITERATION:
            self._wrap(monkeypatch, plugin, name)

    def _count(self, monkeypatch, owner, name):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            if self.inside:
                self.iterations[-1]["reads"].append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    def _wrap(self, monkeypatch, plugin, name):
        callback = getattr(plugin, name)
        growth = plugin if isinstance(plugin, GrowthPlugin) else getattr(plugin, "growth", None)

        def wrapped(strategy, **kwargs):
            if name == "before_training_iteration":
                self.iterations.append({"reads": [], "growth": False})
            events = len(growth.history) if growth else 0
            with self._counting():
                callback(strategy, **kwargs)
            if growth and len(growth.history) > events:
                self.iterations[-1]["growth"] = True   # once per experience: may sync

        monkeypatch.setattr(plugin, name, wrapped)

    @contextmanager
    def _counting(self):
        self.inside = True
        try:
            yield
        finally:
            self.inside = False


def _census(monkeypatch, plugin):
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=3)
    model = mlp()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05,
                                                            momentum=0.9),
                     train_mb_size=16, train_epochs=1, plugins=[plugin],
                     evaluator=quiet_evaluator())
    census = SyncCensus(monkeypatch, plugin)
    for experience in stream.train_stream:
        strategy.train(experience)
    return census


@pytest.mark.parametrize("make", [
    lambda: SparseGrowPlugin(growth={"units": None, "min_units": 2},
                             protection={"project_every": 2}),
    lambda: SparseGrowPlugin(growth={"units": None, "min_units": 2, "init_density": 0.5},
                             protection={"gating": "mask", "gate_topk": 0.5}),
    lambda: SparseGrowPlugin(growth={"units": None, "min_units": 2},
                             protection={"gating": "both", "gate_topk": 0.5, "project_every": 1}),
    lambda: GrowthPlugin(units=2, init_density=0.5),   # its own pinned zeros, no protection
], ids=["subspace", "mask-topk", "both-topk", "growth-alone"])
def test_no_host_reads_in_the_per_iteration_callbacks(monkeypatch, make):
    plugin = make()
    census = _census(monkeypatch, plugin)
    steady = [it["reads"] for it in census.iterations if not it["growth"]]
    assert len(steady) > 20 and len(steady) < len(census.iterations)   # growth happened
    if isinstance(plugin, GrowthPlugin):
        assert plugin._pins.active
    else:   # protection ran
        assert plugin.freezing.locks.active or plugin.freezing.subspace.bases
    assert all(reads == [] for reads in steady), \
        next(reads for reads in steady if reads)


def test_the_census_sees_a_host_read(monkeypatch):
    """The guard can fail: a plugin that reads a value every step is caught."""
    class Reading(FreezingPlugin):
        def after_update(self, strategy, **kwargs):
            super().after_update(strategy, **kwargs)
            if strategy.loss > 0:   # bool() of a tensor: a sync on CUDA
                pass

    census = _census(monkeypatch, Reading())
    assert all(it["reads"] == ["__bool__"] for it in census.iterations)
