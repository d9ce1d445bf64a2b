import pytest
import torch
import torch.nn as nn

from sparsegrow.errors import ConfigError
from sparsegrow.protection import importance_scores


def _model():
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -3.0]]))
        lin.bias.fill_(0.5)
    return lin


def _mse(out, y):
    return ((out.squeeze(1) - y) ** 2).mean()


# model y = 2 x1 - 3 x2 + 0.5; one sample each batch. Loss (ŷ - y)², dL/dw = 2 (ŷ - y) x.
BATCHES = [(torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])),   # ŷ = 2.5, r = 2.5
           (torch.tensor([[0.0, 1.0]]), torch.tensor([1.0]))]   # ŷ = -2.5, r = -3.5
GRAD_W = [torch.tensor([5.0, 0.0]), torch.tensor([0.0, -7.0])]
GRAD_B = [5.0, -7.0]


def test_taylor_is_mean_abs_theta_times_grad():
    s = importance_scores(_model(), BATCHES, _mse, kind="taylor")
    w = torch.tensor([2.0, -3.0])
    expected = ((w * GRAD_W[0]).abs() + (w * GRAD_W[1]).abs()) / 2
    torch.testing.assert_close(s["weight"][0], expected)
    torch.testing.assert_close(s["bias"], torch.tensor([(0.5 * 5 + 0.5 * 7) / 2]))


def test_fisher_is_mean_squared_grad():
    s = importance_scores(_model(), BATCHES, _mse, kind="fisher")
    torch.testing.assert_close(s["weight"][0], torch.tensor([25.0 / 2, 49.0 / 2]))
    torch.testing.assert_close(s["bias"], torch.tensor([(25.0 + 49.0) / 2]))


def test_magnitude_needs_no_data_and_grads_untouched():
    model = _model()
    s = importance_scores(model, [], _mse, kind="magnitude")
    torch.testing.assert_close(s["weight"], torch.tensor([[2.0, 3.0]]))
    importance_scores(model, BATCHES, _mse, kind="taylor")
    assert model.weight.grad is None  # autograd.grad: .grad of the user's model untouched


def test_mode_restored_and_unknown_score():
    model = nn.Sequential(nn.Linear(2, 1), nn.Dropout(0.5)).train()
    importance_scores(model, BATCHES, _mse)
    assert model.training and model[1].training
    with pytest.raises(ConfigError, match="unknown importance score 'hessian'"):
        importance_scores(model, BATCHES, _mse, kind="hessian")
