"""quiet_offsets: turning and threshold of new units, by hand."""

import pytest
import torch

from sparsegrow.protection.quiet import quiet_offsets


def test_units_are_turned_to_respond_positively_and_lowered_by_margin_stds():
    responses = torch.tensor([[1.0, -2.0, 0.5],
                              [3.0, -6.0, 0.5]])     # means 2, -4, 0.5; stds 1, 2, 0
    sign, offset = quiet_offsets(responses, 1.5)
    assert torch.equal(sign, torch.tensor([1.0, -1.0, 1.0]))
    assert torch.allclose(offset, torch.tensor([-1.5, -3.0, 0.0]))
    turned = responses * sign + offset               # what the new thresholds leave
    assert torch.allclose(turned.mean(0), torch.tensor([0.5, 1.0, 0.5]))


def test_margin_zero_only_turns_and_a_negative_margin_is_refused():
    sign, offset = quiet_offsets(torch.tensor([[-1.0], [-3.0]]), 0.0)
    assert sign.item() == -1.0 and offset.item() == 0.0
    with pytest.raises(ValueError, match="quiet margin must be ≥ 0"):
        quiet_offsets(torch.zeros(2, 1), -0.1)
