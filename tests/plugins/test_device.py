"""Where the plugins' state lives: on the model's device after a resume; one process only.

The CPU has one device, so the CPU tests move the model to the ``meta`` device (shapes, no
data) to see every tensor of a plugin's state follow it; the CUDA test resumes a CPU-trained
checkpoint on a GPU for real.
"""

import copy
import io
from collections import defaultdict

import pytest
import torch
import torch.nn as nn
from avalanche.training import Naive
from avalanche.training.utils import ParamData

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.errors import IncompatiblePluginError
from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin
from sparsegrow.runner.checkpoint import on_device


def plugin_tensors(state):
    """Every tensor in a (nested) plugin state."""
    if torch.is_tensor(state):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from plugin_tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from plugin_tensors(value)


def _plugin(**kwargs):
    # every kind of state: masks and pinned zeros, bases and anchors, BatchNorm-free mlp,
    # birth-gate prototypes
    return SparseGrowPlugin(growth={"units": None, "min_units": 2, "init_density": 0.5,
                                    "birth_gate": True},
                            protection={"gating": "both"}, **kwargs)


def _train(model, sg, experiences, device="cpu"):
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05,
                                                            momentum=0.9),
                     train_mb_size=16, train_epochs=1, plugins=[sg],
                     evaluator=quiet_evaluator(), device=device)
    for experience in experiences:
        strategy.train(experience)
    return strategy


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=3)
    model, sg = mlp(), _plugin()
    _train(model, sg, stream.train_stream[:2])
    buffer = io.BytesIO()
    torch.save({"model": model, "plugin": sg.state_dict()}, buffer)
    return stream, buffer.getvalue()


def _resumed(checkpoint):
    saved = torch.load(io.BytesIO(checkpoint), weights_only=False, map_location="cpu")
    sg = _plugin()
    sg.load_state_dict(saved["plugin"])
    return saved["model"], sg


def test_the_state_holds_every_kind_of_tensor(trained):
    _, sg = _resumed(trained[1])
    state = sg.state_dict()
    assert state["freezing"]["locks"]["frozen"] and state["freezing"]["subspace"]["bases"]
    assert any(m.any() for m in state["freezing"]["locks"]["pinned"].values())   # sparse init
    assert len(state["growth"]["gate"]["prototypes"]) == 2


def test_every_plugin_tensor_follows_the_model_to_its_device(trained):
    model, sg = _resumed(trained[1])
    model.to("meta")   # stands in for another device
    for part in sg.parts:
        part._place(model)   # what before_training_exp does first
    tensors = list(plugin_tensors(sg.state_dict()))
    assert len(tensors) > 10 and all(t.device.type == "meta" for t in tensors)
    # the per-step caches too: gating and restores read them
    assert all(t.device.type == "meta" for c in sg.freezing.locks._free.values() for t in c[2:])


def test_a_resumed_plugin_trains_on_where_it_left_off(trained):
    stream, checkpoint = trained
    model, sg = _resumed(checkpoint)
    before = copy.deepcopy(sg.freezing.locks.frozen)
    _train(model, sg, stream.train_stream[2:])
    assert len(sg.growth.history) == 2
    for name, mask in before.items():   # masks only grow
        assert torch.equal(sg.freezing.locks.frozen[name][tuple(map(slice, mask.shape))] & mask,
                           mask)


def test_the_runner_moves_avalanche_plugin_state_too():
    importance = ParamData("fc.weight", shape=(2, 3), device="cpu")
    state = {"importances": defaultdict(dict, {0: {"fc.weight": importance}}),
             "prev_model": nn.Linear(3, 2), "saved": [torch.ones(2), (torch.zeros(1), 3)],
             "mem_size": 40}
    moved = on_device(state, "meta")
    assert isinstance(moved["importances"], defaultdict)
    assert moved["importances"][0]["fc.weight"].data.device.type == "meta"
    assert moved["importances"][0]["fc.weight"].device.type == "meta"
    assert moved["prev_model"].weight.device.type == "meta"
    assert all(t.device.type == "meta" for t in plugin_tensors(moved["saved"]))
    assert moved["saved"][1][1] == 3 and moved["mem_size"] == 40


@pytest.mark.cuda
def test_a_cpu_checkpoint_resumes_on_the_gpu(trained):
    stream, checkpoint = trained
    model, sg = _resumed(checkpoint)
    model.to("cuda")
    _train(model, sg, stream.train_stream[2:], device="cuda")
    tensors = list(plugin_tensors(sg.state_dict()))
    assert tensors and all(t.device.type == "cuda" for t in tensors)


@pytest.mark.parametrize("make", [SparseGrowPlugin, GrowthPlugin, FreezingPlugin])
def test_a_data_parallel_model_is_refused_in_one_line(make):
    model = nn.DataParallel(mlp())   # works on the CPU, without devices
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=16, plugins=[make()], evaluator=quiet_evaluator())
    with pytest.raises(IncompatiblePluginError,
                       match=r"Plugin does not support a DataParallel-wrapped model: .*; train "
                             r"the unwrapped model in one process$"):
        strategy.train(synthetic_stream(n_experiences=1).train_stream[0])
