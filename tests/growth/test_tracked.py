"""Per-parameter tensors registered with the Grower are padded when their parameter grows."""

import pytest
import torch

from growth_models import ConvPoolFlattenLinear
from sparsegrow.errors import GrowthError
from sparsegrow.growth import Grower


def test_tracked_tensors_are_padded_with_their_fill():
    model = ConvPoolFlattenLinear()
    grower = Grower(model)
    frozen = torch.rand(model.fc.weight.shape) > 0.5
    scores = torch.rand(model.conv2.weight.shape)
    grower.track("fc.weight", "frozen", frozen, fill=False)
    grower.track("conv2.weight", "scores", scores, fill=0.0)
    grower.track("conv2.bias", "sparse", torch.ones(6, dtype=torch.bool), fill=True)
    grower.widen("conv2", 2, init="zero_out")
    grower.widen("fc", 3, init="zero_out")

    padded = grower.tracked("fc.weight", "frozen")
    assert padded.shape == model.fc.weight.shape == (10, 32) and padded.dtype == torch.bool
    assert torch.equal(padded[:7, :24], frozen)
    assert not padded[7:].any() and not padded[:, 24:].any()
    padded = grower.tracked("conv2.weight", "scores")
    assert padded.shape == (8, 4, 3, 3) and torch.equal(padded[:6], scores)
    assert torch.all(padded[6:] == 0)
    assert grower.tracked("conv2.bias", "sparse").tolist() == [True] * 8


def test_tracking_errors_name_the_parameter():
    grower = Grower(ConvPoolFlattenLinear())
    with pytest.raises(GrowthError, match="tensor shape \\(3,\\) differs from the parameter's"):
        grower.track("fc.weight", "frozen", torch.zeros(3), fill=0)
    with pytest.raises(GrowthError, match="no parameter 'fc.nope'"):
        grower.track("fc.nope", "frozen", torch.zeros(3), fill=0)
    with pytest.raises(GrowthError, match="no tensor 'frozen' is tracked for parameter 'fc.bias'"):
        grower.tracked("fc.bias", "frozen")
