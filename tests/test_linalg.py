from pathlib import Path

import pytest
import torch

from sparsegrow.linalg import canonical_signs, full_precision, thin_svd


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


def test_canonical_signs_make_the_largest_entry_of_each_row_positive():
    rows = torch.tensor([[0.1, -0.9, 0.2], [0.5, 0.1, -0.3], [0.0, 0.0, 0.0]])
    expected = torch.tensor([[-0.1, 0.9, -0.2], [0.5, 0.1, -0.3], [0.0, 0.0, 0.0]])
    assert torch.equal(canonical_signs(rows), expected)
    assert torch.equal(canonical_signs(-rows)[:2], expected[:2])
    assert canonical_signs(torch.zeros(0, 3)).shape == (0, 3)


PER_BACKEND = hasattr(torch.backends.cuda.matmul, "fp32_precision")   # torch >= 2.9
SWITCHES = ([torch.backends.cuda.matmul, torch.backends.cudnn.conv,
             torch.backends.mkldnn.matmul, torch.backends.mkldnn.conv] if PER_BACKEND else [])


def _precision_state():
    return [s.fp32_precision for s in SWITCHES], torch.backends.cuda.matmul.allow_tf32


@pytest.mark.skipif(not PER_BACKEND, reason="per-backend float32 precision arrived in torch 2.9")
def test_full_precision_restores_each_backend_of_a_caller_who_used_the_legacy_switch():
    """Seen on an H200 with torch 2.11: a caller set ``allow_tf32`` (the legacy switch), the
    block restored the global precision, which also set oneDNN's matmul to TF32; after the
    caller's next legacy switch, torch refused to read the precision ("mix of the legacy and
    new APIs") inside the next block."""
    before = _precision_state()
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        state = _precision_state()
        with full_precision():
            assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
            assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert _precision_state() == state
        torch.backends.cuda.matmul.allow_tf32 = False
        with full_precision():
            pass
        torch.get_float32_matmul_precision()   # raised before the fix
    finally:
        torch.set_float32_matmul_precision("highest")
        for switch, value in zip(SWITCHES, before[0]):
            switch.fp32_precision = value
        torch.backends.cuda.matmul.allow_tf32 = before[1]
