"""later_units_silenced: the grown model with the later units silenced is the model before."""

import copy

import pytest
import torch

from sparsegrow.growth import Grower, later_units_silenced

from growth_models import ConvPoolFlattenLinear, TinyResNet, image_input, mlp, settle


@pytest.mark.parametrize("make", [mlp, ConvPoolFlattenLinear, TinyResNet])
def test_silencing_the_units_grown_since_gives_back_the_model_before(make):
    model = settle(make())
    model.eval()
    x = image_input(model)
    grower = Grower(model, example=x)
    widths = grower.widths()
    before = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    for pair in grower.pairs:   # random init: the new units change the function
        grower.widen(pair.producer, 3, init="random", generator=generator)
    with torch.no_grad():
        grown, old = model(x), before(x)
        with later_units_silenced(model, grower.pairs, widths):
            silenced = model(x)
    assert (grown - old).abs().max() > 1e-3
    # within float32 rounding, not bit-exact: the wider products sum the same terms plus exact
    # zeros in another order, which changes the last bits on some CPUs (measured ≤ 6e-8 here)
    torch.testing.assert_close(silenced, old, rtol=1e-5, atol=1e-6)
    with torch.no_grad():   # bit-exact: the hooks are gone, the same model runs the same kernels
        assert torch.equal(model(x), grown)


def test_producers_not_named_or_not_grown_are_left_alone():
    model = mlp().eval()
    x = image_input(model)
    grower = Grower(model, example=x)
    widths = grower.widths()
    grower.widen("1", 2, init="random", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        grown = model(x)
        with later_units_silenced(model, grower.pairs, {"3": widths["3"]}):
            assert torch.equal(model(x), grown)
