import torch
import torch.nn as nn

from sparsegrow.protection.classes import output_layer, seen_rows


class _Masked(nn.Module):
    """Post-processes its last layer's output: no layer's output *is* the model's output."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        return self.body(x) - 1.0


def test_output_layer_is_the_layer_whose_output_the_model_returns():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).train()
    assert output_layer(model, torch.randn(2, 4)) == "3"
    assert model.training                                  # mode restored
    assert output_layer(_Masked(), torch.randn(2, 4)) is None


def test_seen_rows():
    assert seen_rows(5, {0, 3, 7}).tolist() == [True, False, False, True, False]
