"""Inserting a layer and adding a branch: names, function change, and analysis afterwards."""

import copy

import pytest
import torch
import torch.nn.functional as F

from growth_models import ConvPoolFlattenLinear, batches, image_input, mlp, output_change, settle
from sparsegrow.errors import GrowthError
from sparsegrow.growth import ExpandablePair, Grower


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("layer", ["conv2", "fc"])  # conv2 → relu; fc → BN → relu (not exact)
def test_identity_deepen_preserves_function_when_a_relu_follows(layer, mode):
    torch.manual_seed(0)
    model = settle(ConvPoolFlattenLinear())
    before = copy.deepcopy(model)
    names = Grower(model).deepen(layer, init="identity")
    assert names == [f"{layer}.deepen_0.0.weight", f"{layer}.deepen_0.0.bias"]
    change = output_change(before, model, image_input(model), mode)
    if layer == "conv2":
        assert change <= 1e-6
    else:  # the inserted ReLU clips the negative pre-BatchNorm values
        assert change > 1e-3


def test_random_deepen_and_branch_change_the_function():
    torch.manual_seed(0)
    model = settle(mlp())
    x = image_input(model)
    for op in ("deepen", "branch"):
        grown = copy.deepcopy(model)
        grower = Grower(grown)
        names = grower.deepen("1") if op == "deepen" else grower.branch("1")
        assert names == [f"1.{op}_0.0.weight", f"1.{op}_0.0.bias"] if op == "deepen" \
            else names == ["1.branch_0.weight", "1.branch_0.bias"]
        assert output_change(model, grown, x, "eval") > 1e-3
        entry = grower.history[-1]
        assert entry["op"] == op and entry["params_after"] - entry["params_before"] == \
            (10 * 10 + 10 if op == "deepen" else 12 * 10 + 10)


def test_analysis_sees_inserted_modules_and_widening_still_preserves():
    torch.manual_seed(0)
    model = settle(mlp())
    grower = Grower(model)
    grower.deepen("1", init="identity")
    grower.branch("3", generator=torch.Generator().manual_seed(0))
    assert grower.pairs == [ExpandablePair("1", "1.deepen_0.0", (), 1)]
    # The branch reads the same input as '3': the inserted layer now has two consumers.
    assert grower.report.rejected["1.deepen_0.0"] == (
        "its output feeds 2 operations ('3', '3.branch_0'): more than one consumer")
    assert grower.report.rejected["3"].startswith("residual add on the path")
    assert grower.report.rejected["3.branch_0"].startswith("residual add on the path")
    before = copy.deepcopy(model)
    grower.widen("1", 2, init="on_data", batches=batches(model), loss_fn=F.cross_entropy)
    assert model.get_submodule("1.deepen_0.0").in_features == 12
    assert output_change(before, model, image_input(model), "eval") <= 1e-6
    restored = mlp()
    Grower(restored).deepen("1")
    Grower(restored).branch("3")
    assert set(restored.state_dict()) == set(before.state_dict())


def test_deepen_rejects_unknown_init():
    with pytest.raises(GrowthError, match="unknown init 'zeros'"):
        Grower(mlp()).deepen("1", init="zeros")


def test_replaying_history_rebuilds_a_grown_model_for_loading():
    torch.manual_seed(0)
    model = settle(ConvPoolFlattenLinear())
    grower = Grower(model)
    grower.widen("conv1", 2, init="on_data", batches=batches(model), loss_fn=F.cross_entropy)
    grower.deepen("conv2", generator=torch.Generator().manual_seed(0))
    grower.widen("conv2.deepen_0.0", 3, init="net2wider")
    grower.branch("head")
    state, history = model.state_dict(), list(grower.history)

    fresh = ConvPoolFlattenLinear()
    rebuilt = Grower(fresh)
    rebuilt.replay(history)
    fresh.load_state_dict(state)
    assert rebuilt.history == history
    x = image_input(model)
    assert output_change(model, fresh, x, "eval") == 0
    with pytest.raises(GrowthError, match="unknown op 'shrink'"):
        rebuilt.replay([{"op": "shrink", "layer": "fc"}])
