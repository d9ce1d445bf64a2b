"""Exact function preservation of widening, and the structure of widened layers."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from growth_models import (ConvPoolFlattenLinear, TinyResNet, batches, conv_bn_conv, image_input,
                           mlp, output_change, settle)
from sparsegrow.growth import Grower

TOL = 1e-6
MODELS = {"mlp": mlp, "conv_bn_conv": conv_bn_conv,
          "conv_pool_flatten_linear": ConvPoolFlattenLinear, "resnet": TinyResNet}
PRESERVING = ["zero_out", "net2wider", "on_data"]


def _grow_all(model, init, m=3, seed=0, density=0.5):
    grower = Grower(model)
    gen = torch.Generator().manual_seed(seed)
    density = 1.0 if init == "net2wider" else density
    grower.widen_many({p.producer: m for p in grower.pairs}, init=init, init_density=density,
                      batches=batches(model), loss_fn=F.cross_entropy, generator=gen)
    return grower


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("init", PRESERVING)
@pytest.mark.parametrize("name", list(MODELS))
def test_widening_preserves_function(name, init, mode):
    torch.manual_seed(0)
    model = settle(MODELS[name]())
    model.train(mode == "train")
    before = copy.deepcopy(model)
    grower = _grow_all(model, init)
    assert grower.history and all(h["units"] == 3 for h in grower.history)
    assert output_change(before, model, image_input(model), mode) <= TOL
    assert model.training == (mode == "train")


def _fix_dropout_masks(model, seed=5):
    """Replace every Dropout's random mask by one fixed per (sample, feature) position.

    A fresh RNG draw for a wider tensor is not aligned with the narrower one, so re-seeding cannot
    give old units the same mask before and after growth; fixing the mask per position can.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            keep = (torch.rand(64, 64, generator=torch.Generator().manual_seed(seed)) > module.p)

            def hook(mod, args, out, keep=keep):
                x = args[0]
                return x * keep[: x.shape[0], : x.shape[1]] / (1 - mod.p) if mod.training else x
            module.register_forward_hook(hook)


@pytest.mark.parametrize("init,mode", [(init, mode) for init in PRESERVING
                                       for mode in ("eval", "train")
                                       # net2wider copies get their own dropout masks, so in
                                       # train mode it preserves the function in expectation only
                                       if (init, mode) != ("net2wider", "train")])
def test_widening_with_dropout_preserves_function(init, mode):
    torch.manual_seed(0)
    model = mlp(dropout=0.5)
    before = copy.deepcopy(model)
    grower = _grow_all(model, init)
    assert [h["layer"] for h in grower.history] == ["4", "1"]  # both pairs pass a Dropout
    _fix_dropout_masks(before)
    _fix_dropout_masks(model)
    x = image_input(model)
    assert output_change(before, model, x, mode) <= TOL
    if mode == "train":  # the fixed masks really drop units, so train ≠ eval
        model.eval()
        eval_out = model(x)
        model.train()
        assert (model(x) - eval_out).abs().max() > 1e-3


def test_random_init_changes_function():
    torch.manual_seed(0)
    model = settle(mlp())
    before = copy.deepcopy(model)
    _grow_all(model, "random")
    assert output_change(before, model, image_input(model), "eval") > 1e-3


def test_ten_growth_events_in_a_row_preserve_function():
    torch.manual_seed(0)
    model = settle(ConvPoolFlattenLinear())
    x = image_input(model)
    reference = copy.deepcopy(model)
    inits = ["zero_out", "net2wider", "on_data"]
    for event in range(10):
        grower = Grower(model)  # re-created on the grown model every time
        grower.widen_many({p.producer: 1 + event % 3 for p in grower.pairs},
                          init=inits[event % 3], batches=batches(model, seed=event),
                          loss_fn=F.cross_entropy,
                          generator=torch.Generator().manual_seed(event))
        for mode in ("eval", "train"):
            assert output_change(reference, model, x, mode) <= TOL
    widths = Grower(model).widths()
    assert widths == {"conv1": 4 + 19, "conv2": 6 + 19, "fc": 7 + 19, "head": 3}
    assert model.fc.in_features == widths["conv2"] * 4


def test_widening_replaces_parameters_and_updates_modules():
    torch.manual_seed(0)
    model = settle(ConvPoolFlattenLinear()).eval()
    model.bn1.train()  # a module whose mode differs from its parent's keeps it
    old = dict(model.named_parameters())
    batches_before = model.bn1.num_batches_tracked.clone()
    running_mean = model.bn1.running_mean.clone()
    grower = Grower(model)
    grower.widen("conv1", 2, init="zero_out")
    for name in ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight"]:
        new = model.get_parameter(name)
        assert new is not old[name] and isinstance(new, nn.Parameter)
        assert new.dtype == old[name].dtype and new.device == old[name].device
        assert new.requires_grad
    assert model.get_parameter("conv2.bias") is old["conv2.bias"]
    assert model.conv1.out_channels == 6 and model.conv1.weight.shape == (6, 1, 3, 3)
    assert model.bn1.num_features == 6 and model.conv2.in_channels == 6
    assert model.conv2.weight.shape == (6, 6, 3, 3)
    assert torch.equal(model.bn1.running_mean[:4], running_mean)
    assert model.bn1.running_mean[4:].tolist() == [0, 0]
    assert model.bn1.running_var[4:].tolist() == [1, 1]
    assert model.bn1.weight[4:].tolist() == [1, 1] and model.bn1.bias[4:].tolist() == [0, 0]
    assert torch.equal(model.bn1.num_batches_tracked, batches_before)
    assert model.conv1.bias[4:].tolist() == [0, 0]
    assert torch.all(model.conv2.weight[:, 4:] == 0)
    assert model.bn1.training and not model.training and not model.conv1.training


def test_conv_flatten_linear_columns_follow_channels():
    torch.manual_seed(0)
    model = ConvPoolFlattenLinear()
    grower = Grower(model)
    assert grower.pair("conv2").spatial == 4
    old = model.fc.weight.detach().clone()
    grower.widen("conv2", 3, init="random", generator=torch.Generator().manual_seed(0))
    assert model.fc.weight.shape == (7, (6 + 3) * 4)
    assert torch.equal(model.fc.weight[:, :24], old)
    assert torch.all(model.fc.weight[:, 24:] != 0)


def test_float64_model_keeps_dtype():
    model = mlp().double()
    Grower(model).widen("1", 2, init="zero_out")
    assert all(p.dtype == torch.float64 for p in model.parameters())
    model(image_input(model).double())


def test_zero_units_changes_nothing():
    model = mlp()
    grower = Grower(model)
    weight = model[1].weight
    mask = grower.widen("1", 0, init="zero_out")
    assert model[1].weight is weight and mask.all() and grower.history == []
