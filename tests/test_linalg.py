from pathlib import Path

import pytest
import torch

from sparsegrow.linalg import thin_svd


@pytest.mark.parametrize("shape", [(30, 80), (80, 30)])
def test_thin_svd_matches_the_svd_on_the_leading_triplets(shape):
    g = torch.Generator().manual_seed(0)
    # a known spectrum: 1, 0.5, 0.25, ... so that the 1e-3 cut keeps exactly 10 triplets
    u0 = torch.linalg.qr(torch.randn(shape[0], 30, generator=g)).Q
    v0 = torch.linalg.qr(torch.randn(shape[1], 30, generator=g)).Q
    sigma = 0.5 ** torch.arange(30, dtype=torch.float32)
    a = (u0 * sigma) @ v0.T
    u, s, vh = thin_svd(a)
    assert s.shape == (10,)
    # the documented accuracy: about eps·σ₁²/σᵢ
    eps = torch.finfo(torch.float32).eps
    assert ((s - sigma[:10]).abs() <= 10 * eps / sigma[:10]).all()
    # the eigenvector side is orthonormal; the side derived from it (A·v/σ or Aᵀ·u/σ) to about
    # eps·σ₁²/(σᵢσⱼ)
    eigen, derived = (u, vh.T) if shape[0] <= shape[1] else (vh.T, u)
    torch.testing.assert_close(eigen.T @ eigen, torch.eye(10), atol=1e-5, rtol=0)
    bound = 10 * eps / torch.outer(sigma[:10], sigma[:10])
    assert ((derived.T @ derived - torch.eye(10)).abs() <= bound).all()
    # the directions of the exact SVD, up to sign, to that accuracy (the leading ones to 1e-5)
    ue, _, vhe = torch.linalg.svd(a.double(), full_matrices=False)
    angle = (10 * eps / sigma[:10] ** 2).double()
    assert (1 - (u.double().T @ ue[:, :10]).abs().diagonal() <= angle).all()
    assert (1 - (vh.double() @ vhe[:10].T).abs().diagonal() <= angle).all()
    assert (1 - (u.double().T @ ue[:, :10]).abs().diagonal()[:5] <= 1e-5).all()


def test_thin_svd_of_a_zero_matrix_is_empty():
    u, s, vh = thin_svd(torch.zeros(4, 6))
    assert u.shape == (4, 0) and s.shape == (0,) and vh.shape == (0, 6)


def test_thin_svd_of_a_rank_deficient_m_where_float32_eigh_fails():
    # an M from a growth event (Split MNIST on 3000 samples per experience, small CNN) whose
    # float32 Gram matrix LAPACK's eigh does not converge on (torch 2.14.1)
    a = torch.load(Path(__file__).parent / "eigh_fails_in_float32.pt")
    u, s, vh = thin_svd(a)
    exact = torch.linalg.svdvals(a.double())
    torch.testing.assert_close(s.double(), exact[: len(s)], atol=1e-6, rtol=1e-4)
    assert s.dtype == a.dtype and len(s) >= 1


@pytest.mark.parametrize("shape", [(30, 80), (80, 30)])
def test_thin_svd_rank_returns_the_leading_triplets_the_callback_asks_for(shape):
    a = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    full = thin_svd(a)
    seen = []
    u, s, vh = thin_svd(a, rank=lambda values: seen.append(values.clone()) or 4)
    torch.testing.assert_close(seen[0], full[1])   # the callback sees every singular value
    assert u.shape == (shape[0], 4) and s.shape == (4,) and vh.shape == (4, shape[1])
    torch.testing.assert_close(s, full[1][:4])
    torch.testing.assert_close(u, full[0][:, :4], atol=1e-5, rtol=0)
    torch.testing.assert_close(vh, full[2][:4], atol=1e-5, rtol=0)
