"""The same optimizer object keeps training the grown parameters with the old state intact."""

import pytest
import torch
import torch.nn.functional as F

from growth_models import ConvPoolFlattenLinear, batches
from sparsegrow.growth import Grower, held_parameters

OPTIMIZERS = {
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adamw_amsgrad": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
}


def _train(model, opt, steps, seed=3):
    for x, y in batches(model, n_batches=steps, seed=seed):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def _snapshot(opt, model):
    return {name: {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[p].items()}
            for name, p in model.named_parameters()}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_state_is_kept_for_old_slices_and_zero_for_new(kind):
    torch.manual_seed(0)
    model = ConvPoolFlattenLinear()
    opt = OPTIMIZERS[kind](model.parameters())
    _train(model, opt, 3)
    before = _snapshot(opt, model)
    old_params = dict(model.named_parameters())
    groups = opt.param_groups

    grower = Grower(model, optimizer=opt)
    grower.widen("conv2", 2, init="zero_out", generator=torch.Generator().manual_seed(0))

    assert opt.param_groups is groups and len(groups[0]["params"]) == len(old_params)
    held = {id(p) for p in groups[0]["params"]}
    for name, param in model.named_parameters():
        assert id(param) in held
        state = opt.state[param]
        assert state.keys() == before[name].keys() and state
        grown = param is not old_params[name]
        assert grown == (name in {"conv2.weight", "conv2.bias", "fc.weight"})
        for key, old_value in before[name].items():
            value = state[key]
            if not torch.is_tensor(old_value) or old_value.shape != old_params[name].shape:
                assert torch.equal(value, old_value) if torch.is_tensor(value) \
                    else value == old_value  # Adam's step and the like
                continue
            corner = tuple(slice(0, s) for s in old_value.shape)
            assert torch.equal(value[corner], old_value)
            assert value.shape == param.shape
            if grown:
                outside = value.clone()
                outside[corner] = 0
                assert value.shape != old_value.shape and not outside.any()
            else:
                assert value is opt.state[param][key]
    for old in old_params.values():
        if all(old is not p for p in model.parameters()):
            assert old not in opt.state

    new_columns = model.fc.weight[:, 24:].detach().clone()
    assert torch.all(new_columns == 0)
    _train(model, opt, 1, seed=7)
    assert torch.all(model.fc.weight[:, 24:] != new_columns)  # the new outgoing weights train


@pytest.mark.parametrize("op", ["deepen", "branch"])
def test_added_modules_join_the_group_of_their_layer(op):
    torch.manual_seed(0)
    model = ConvPoolFlattenLinear()
    opt = torch.optim.SGD([{"params": [model.conv1.weight, model.conv1.bias]},
                           {"params": [p for n, p in model.named_parameters()
                                       if not n.startswith("conv1")], "lr": 0.1}],
                          lr=0.05, momentum=0.9)
    _train(model, opt, 2)
    grower = Grower(model, optimizer=opt)
    names = grower.deepen("fc") if op == "deepen" else grower.branch("fc")
    new = [model.get_parameter(n) for n in names]
    assert len(names) == 2 and all(any(p is q for q in opt.param_groups[1]["params"]) for p in new)
    values = [p.detach().clone() for p in new]
    _train(model, opt, 1, seed=9)
    assert all(not torch.equal(p, v) for p, v in zip(new, values))
    assert grower.history[-1]["new_params"] == names


def test_held_parameters_maps_names_to_the_grown_objects():
    torch.manual_seed(0)
    model = ConvPoolFlattenLinear()
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if n != "head.bias"])
    Grower(model, optimizer=opt).widen("fc", 2, init="zero_out")
    held = held_parameters(model, opt)
    assert set(held) == {n for n, _ in model.named_parameters()} - {"head.bias"}
    assert held["fc.weight"] is model.fc.weight and held["head.weight"] is model.head.weight
