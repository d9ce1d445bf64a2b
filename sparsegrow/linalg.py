"""Thin SVD through the smaller Gram matrix: the leading singular triplets for a fraction of
the cost of ``torch.linalg.svd``.

Growth (M's spectrum and top directions) and subspace protection (input bases) only use the
directions that carry most of a matrix's energy σ², never its smallest singular values. The
eigendecomposition of A·Aᵀ or Aᵀ·A, whichever is smaller, gives σ² directly and costs 2–4× less
than an SVD on the CPU for the matrices they meet (a few hundred rows and columns). Its error on
σᵢ is about ε·σ₁²/σᵢ, so triplets below ``rtol``·σ₁ are not returned: at single precision they
are noise, and every caller reads a missing direction as "no signal there".

All of this linear algebra runs at full float32 precision (:func:`full_precision`), whatever
autocast region or TF32 setting the training step uses.
"""

from __future__ import annotations

import operator
from contextlib import ExitStack, contextmanager
from typing import Callable

import torch

from sparsegrow.errors import DivergenceError


# torch >= 2.9 keeps a float32 precision per backend and operation beside the legacy global
# one (``torch.set_float32_matmul_precision``), and refuses to read the global one once the two
# disagree. Setting the global one also rewrites the per-backend ones, so a block that restores
# only the global setting leaves, e.g., oneDNN's matmul at "tf32" behind a caller who had
# changed only ``torch.backends.cuda.matmul.allow_tf32``; that caller's next
# ``torch.get_float32_matmul_precision()`` (or torch's own) then raises. Each switch is
# therefore saved and restored by itself.
_FP32_SWITCHES = ("cuda.matmul", "cudnn.conv", "mkldnn.matmul", "mkldnn.conv")


def _fp32_switches() -> list:
    """The per-backend float32 precision switches this torch has (none before 2.9)."""
    found = []
    for path in _FP32_SWITCHES:
        try:
            switch = operator.attrgetter(path)(torch.backends)
        except AttributeError:
            continue
        if hasattr(switch, "fp32_precision"):
            found.append(switch)
    return found


@contextmanager
def full_precision():
    """Run the block in full-precision float32: autocast off on every device type, no TF32 in
    matmuls or cuDNN convolutions, no reduced precision in oneDNN's; the caller's settings,
    every backend's separately, are restored exactly afterwards.

    Bases, spectra and projections decide what old inputs see: a projection through bfloat16
    products or TF32's 10-bit mantissa leaves a protected layer's response on old inputs off
    by ~1e-3 instead of float32 rounding, and CUDA has no half-precision ``eigh`` at all. Use
    it as a ``with`` block or as a decorator.
    """
    switches = _fp32_switches()
    saved = [switch.fp32_precision for switch in switches]
    try:
        precision = torch.get_float32_matmul_precision()
    except RuntimeError:    # the caller mixed the two APIs; its per-backend switches are the truth
        precision = None
    cudnn_tf32 = None if switches else torch.backends.cudnn.allow_tf32
    with ExitStack() as stack:
        for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
            stack.enter_context(torch.autocast(device_type=device, enabled=False))
        torch.set_float32_matmul_precision("highest")
        for switch in switches:
            switch.fp32_precision = "ieee"
        if cudnn_tf32 is not None:
            torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            if precision is not None:
                torch.set_float32_matmul_precision(precision)
            for switch, value in zip(switches, saved):
                switch.fp32_precision = value
            if cudnn_tf32 is not None:
                torch.backends.cudnn.allow_tf32 = cudnn_tf32


def canonical_signs(rows: torch.Tensor) -> torch.Tensor:
    """``rows``, each multiplied by ±1 so that its largest-magnitude entry is positive.

    Singular vectors, eigenvectors and a QR factor's columns have no sign of their own: LAPACK
    and cuSOLVER pick them differently, so a direction that becomes weights (a new unit's
    incoming row, whose sign decides where its ReLU fires) is given one fixed by its entries.
    """
    if rows.numel() == 0:
        return rows
    pivot = rows.gather(1, rows.abs().argmax(1, keepdim=True))
    return torch.where(pivot < 0, -rows, rows)


@full_precision()
def thin_svd(a: torch.Tensor, *, rtol: float = 1e-3,
             rank: Callable[[torch.Tensor], int] | None = None):
    """Leading singular triplets of ``a``.

    :param a: [m, n] matrix (float16/bfloat16 is computed and returned in float32).
    :param rtol: smallest singular value returned, relative to the largest.
    :param rank: given those singular values, how many leading triplets to return; the side
        derived from the eigenvectors is then computed for these only (for a subspace basis of
        a wide layer's inputs, u of a [25089, 512] sample costs as much as its Gram matrix).
    :return: ``(u, s, vh)``: s [r] descending, r = the number of singular values ≥ rtol·σ₁
        (0 for a zero matrix), at most ``rank`` of them; u [m, r] and vh [r, n]. The side from
        the eigendecomposition (u if m ≤ n, else vh) is orthonormal; the other, A·v/σ or
        Aᵀ·u/σ, to about ε·σ₁²/(σᵢσⱼ) (callers that need it exact re-orthogonalise).
    """
    if not bool(torch.isfinite(a).all()):
        # LAPACK would fail to converge on it, deep inside growth or protection
        raise DivergenceError(f"a [{a.shape[0]}, {a.shape[1]}] matrix of growth or protection "
                              "has non-finite entries: training diverged; lower the learning "
                              "rate or a plugin's loss penalty")
    if a.dtype != torch.float64:
        a = a.float()
    wide = a.shape[0] <= a.shape[1]
    try:
        values, vectors = torch.linalg.eigh(a @ a.T if wide else a.T @ a)
    except torch.linalg.LinAlgError:
        # LAPACK's float32 eigh can fail to converge on a Gram matrix of tiny entries (σ ~ 1e-6,
        # e.g. a nearly silent layer's M) or of many zero eigenvalues (a rank-deficient M on a
        # few batches, seen with torch 2.14's LAPACK); retry in float64 on a scaled by a power
        # of two (exact; the decomposition is scale-invariant) and scale the eigenvalues back
        scale = 2.0 ** float(torch.frexp(a.abs().max())[1])
        b = a.double() / scale
        values, vectors = torch.linalg.eigh(b @ b.T if wide else b.T @ b)
        values, vectors = (values * scale ** 2).to(a.dtype), vectors.to(a.dtype)
    s = values.flip(0).clamp_min(0).sqrt()
    r = int((s >= rtol * s[0]).sum()) if s.numel() and s[0] > 0 else 0
    if rank is not None:
        r = min(r, rank(s[:r]))
    s, vectors = s[:r], vectors.flip(1)[:, :r]
    if wide:
        return vectors, s, (vectors.T @ a) / s[:, None]
    return (a @ vectors) / s, s, vectors.T
