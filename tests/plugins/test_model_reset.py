"""The plugin under strategies and users that replace, reset, reshape or freeze the model
(the rules of what carries are in sparsegrow/plugins/replaced.py)."""

import pytest
import torch
import torch.nn as nn
from avalanche.training import GDumb, FromScratchTraining, Naive

from plugin_streams import mlp, quiet_evaluator, synthetic_stream
from sparsegrow.errors import IncompatiblePluginError
from sparsegrow.growth import count_parameters
from sparsegrow.plugins import FreezingPlugin, SparseGrowPlugin

KW = dict(criterion=nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=1,
          evaluator=quiet_evaluator())


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05)


def test_gdumb_fresh_model_each_experience_is_analysed_again():
    torch.manual_seed(0)
    stream = synthetic_stream(scenario="class", n_experiences=3)
    model = mlp(n_out=6)
    plugin = SparseGrowPlugin(growth={"units": None, "min_units": 2})
    strategy = GDumb(model=model, optimizer=_sgd(model), mem_size=60, plugins=[plugin], **KW)
    models = []
    for exp in stream.train_stream:
        strategy.train(exp)            # raised "shrank or changed rank" before
        models.append(strategy.model)
        strategy.eval(stream.test_stream)
    assert models[1] is not models[0] and models[2] is not models[1]
    # each fresh copy of the initial model grew once, in its own experience
    assert len(plugin.growth.history) == 2
    assert [e["params_before"] for e in plugin.growth.history] == [count_parameters(mlp(6))] * 2
    assert count_parameters(models[2]) > count_parameters(mlp(6))
    # protection describes the current model only: its shapes, its layers
    params = dict(models[2].named_parameters())
    bases = plugin.freezing.subspace.bases
    assert set(bases) == {"1", "3", "5"}
    for name, basis in bases.items():
        assert basis.shape[0] == params[f"{name}.weight"].shape[1] + 1   # [input, 1]


def test_from_scratch_training_is_refused_in_one_line():
    model = mlp()
    for plugin in (SparseGrowPlugin(), FreezingPlugin()):
        strategy = FromScratchTraining(model=model, optimizer=_sgd(model), plugins=[plugin], **KW)
        with pytest.raises(IncompatiblePluginError, match=r"cannot be combined with "
                           r"FromScratchTrainingPlugin: FromScratchTraining resets the weights .*"
                           r"Train the from-scratch baseline without "):
            strategy.train(synthetic_stream(n_experiences=1).train_stream[0])


def test_a_layer_frozen_between_experiences_keeps_its_basis():
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=3)
    model = mlp()
    plugin = SparseGrowPlugin(growth={"units": None, "min_units": 2})
    strategy = Naive(model=model, optimizer=_sgd(model), plugins=[plugin], **KW)
    strategy.train(stream.train_stream[0])
    model[1].requires_grad_(False)          # as a user or CWR* does
    basis = plugin.freezing.subspace.bases["1"].clone()
    frozen = model[1].weight.detach().clone()
    for exp in stream.train_stream[1:]:
        strategy.train(exp)                 # "no longer has a module of that name" before
    assert torch.equal(model[1].weight[:16], frozen)      # old units untouched
    assert torch.equal(plugin.freezing.subspace.bases["1"], basis)   # kept, unused
    assert len(plugin.growth.history) == 2


def test_a_layer_swapped_for_a_narrower_one_drops_only_what_cannot_follow():
    torch.manual_seed(0)
    stream = synthetic_stream(n_experiences=2)
    model = mlp()
    plugin = SparseGrowPlugin(growth=False, protection={"gating": "both"})
    strategy = Naive(model=model, optimizer=_sgd(model), plugins=[plugin], **KW)
    strategy.train(stream.train_stream[0])
    memory, locks = plugin.freezing.subspace, plugin.freezing.locks
    kept = memory.bases["1"].clone()
    model[3], model[5] = nn.Linear(16, 8), nn.Linear(8, 4)    # narrower hidden layer
    strategy.train(stream.train_stream[1])
    assert torch.equal(memory.bases["1"][:, : kept.shape[1]], kept)   # input unchanged: carries
    assert memory.bases["5"].shape[0] == 8 + 1                       # re-measured at 8 inputs
    assert locks.frozen["3.weight"].shape == (8, 16)
