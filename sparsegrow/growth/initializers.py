"""Initialisers for the new units of a widened pair, and the data-driven growth size.

Each initialiser runs *after* :func:`sparsegrow.growth.surgery.widen` (which leaves the new
units at zero) and writes the last ``m`` rows of P (incoming weights; biases stay 0 except for
``net2wider``) and the new input columns of C (outgoing weights):

- ``random``: incoming and outgoing random (Gaussian, scaled to the existing layer's scale:
  rows to the mean norm of P's existing rows, columns to the RMS of C's existing weights). The
  function-changing baseline.
- ``zero_out``: incoming as ``random``, outgoing zero (function preserving).
- ``net2wider``: Net2Net copy-and-split. Each new unit copies a random existing unit (row, bias,
  BatchNorm parameters and running statistics) and the copied unit's outgoing columns are shared
  equally between it and its copies (function preserving; copies are exact, so no noise and no
  sparsity).
- ``on_data``: incoming = the top-m right singular vectors of the cross-covariance M
  (:mod:`sparsegrow.growth.cross_covariance`), outgoing zero (function preserving).

``random``, ``zero_out`` and ``on_data`` accept ``basis`` (orthonormal columns in P's input space;
for a conv producer, the space of unfolded input patches, in_channels·kh·kw): the incoming rows are
taken in its orthogonal complement (for ``on_data``, the SVD of M restricted to the complement),
so the new units are nearly silent on inputs the basis spans. Rows are then scaled to the mean
norm of P's existing rows and sparsified to ``init_density`` (the largest-magnitude entries of
each row are kept). The returned mask (shape of P's weight) is True where an entry may be
non-zero: all old rows, and the kept entries of the new rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError
from sparsegrow.growth.cross_covariance import Spectrum
from sparsegrow.growth.graph import ExpandablePair
from sparsegrow.growth.layers import get_layer, get_module
from sparsegrow.linalg import canonical_signs, full_precision

INITIALIZERS = ("random", "zero_out", "net2wider", "on_data")


def growth_size(singular_values: torch.Tensor, *, energy: float, min_units: int = 0,
                max_ratio: float = 0.25, width: int, multiple: int = 1) -> int:
    """Number of units the spectrum asks for, by the energy rule, clipped and aligned.

    m = the smallest k such that σ_1² + … + σ_k² ≥ ``energy`` · Σ σ_i² (energy as explained
    variance, as in Gradient Projection Memory), then clipped to
    [``min_units``, ⌊``max_ratio`` · ``width``⌋]; ``min_units`` wins if the two bounds cross.
    An all-zero spectrum asks for 0 units (before clipping). Then, when a whole ``multiple``
    fits under the cap, m is moved to the nearest of 0 and the units that reach a multiple of
    ``multiple`` within the bounds (see :func:`aligned`).

    :param singular_values: the singular values of M (any order).
    :param energy: fraction in [0, 1] of the spectrum's energy to cover.
    :param min_units: lower bound on m.
    :param max_ratio: upper bound on m as a fraction of ``width``.
    :param width: the producer's current number of units.
    :param multiple: widths to align to (1: no alignment).
    """
    if not 0.0 <= energy <= 1.0:
        raise GrowthError(f"growth energy must be in [0, 1], got {energy}")
    if min_units < 0 or max_ratio < 0 or multiple < 1:
        raise GrowthError(f"min_units and max_ratio must be ≥ 0 and multiple ≥ 1, got "
                          f"{min_units}, {max_ratio}, {multiple}")
    power = torch.sort(singular_values.detach().double().flatten() ** 2, descending=True).values
    total = float(power.sum())
    if total <= 0.0 or energy == 0.0:
        k = 0
    else:
        reached = torch.cumsum(power, 0) >= energy * total * (1 - 1e-12)
        # rounding can leave the last partial sum a hair under the target: all directions
        k = int(torch.nonzero(reached)[0]) + 1 if reached.any() else int((power > 0).sum())
    cap = max(min_units, math.floor(max_ratio * width))
    return aligned(width, min(max(k, min_units), cap), multiple=multiple, cap=cap,
                   low=min(min_units, cap))


def aligned(width: int, m: int, *, multiple: int, cap: int, low: int = 0) -> int:
    """``m`` moved to the nearest of: 0 (if ``low`` is 0) or a width that is a multiple of
    ``multiple`` within [``width + low``, ``width + cap``] (ties to the wider). ``m`` is kept
    when it is 0, when a whole block does not fit in one event (``cap`` < ``multiple``: a layer
    this narrow grows by the exact count) or when no such multiple exists.

    Why: CPU (oneDNN) and GPU (cuDNN) convolution kernels are fastest on whole blocks of 8 or
    16 channels; on the small CNN a step of the 33/65-channel model took 1.1–1.3× the 32/64 one's
    for 3% more channels (README, cost on convolutional networks). Growing in whole blocks gives
    capacity for that price, and sub-block requests add nothing.
    """
    if m == 0 or multiple <= 1 or cap < multiple:
        return m
    first = -(-(width + max(low, 1)) // multiple) * multiple
    grown = list(range(first, width + cap + 1, multiple))
    if not grown:
        return m
    options = ([width] if low == 0 else []) + grown
    return min(options, key=lambda w: (abs(w - width - m), -w)) - width


def _project_out(rows: torch.Tensor, basis: torch.Tensor | None) -> torch.Tensor:
    if basis is None or basis.numel() == 0:
        return rows
    return rows - (rows @ basis) @ basis.T


def _check_basis(basis, dim: int, name: str):
    if basis is None:
        return None
    if basis.dim() != 2 or basis.shape[0] != dim:
        raise GrowthError(f"cannot initialise new units of '{name}': basis has shape "
                          f"{tuple(basis.shape)}, expected [{dim}, k] (P's input space)")
    return basis


def _top_directions(spectrum: Spectrum, m: int, basis, generator) -> torch.Tensor:
    """m unit rows: M's top right singular vectors (in the basis' complement), then random
    directions in the complement of those and of the basis once M's rank is used up; these are
    orthonormal as long as the input space has room, and merely random beyond that."""
    if basis is None:
        values, vh = spectrum.singular_values, spectrum.directions
    else:
        values, vh = spectrum.restricted(basis)
    rank = int((values > values.max() * 1e-6).sum()) if values.numel() and values.max() > 0 else 0
    rows = canonical_signs(vh[: min(m, rank)])
    if rows.shape[0] < m:
        fill = torch.randn(m - rows.shape[0], vh.shape[1], generator=generator)
        fill = fill.to(rows.device, rows.dtype)
        fill = _project_out(_project_out(fill, basis), rows.T)
        room = vh.shape[1] - rows.shape[0] - (0 if basis is None else basis.shape[1])
        room = min(max(room, 0), fill.shape[0])
        fill[:room] = canonical_signs(torch.linalg.qr(fill[:room].T).Q.T)
        rows = torch.cat([rows, _project_out(_project_out(fill, basis), rows.T)])
    return rows


def _scaled_sparse(rows: torch.Tensor, old_rows: torch.Tensor, density: float):
    """Scale rows to the mean norm of ``old_rows``, keep the top ``density`` of each by |value|."""
    target = old_rows.flatten(1).norm(dim=1).mean()
    norms = rows.norm(dim=1, keepdim=True)
    # A row with no direction left (basis spans everything) stays zero instead of dividing by 0.
    rows = torch.where(norms > 1e-12, rows / norms.clamp_min(1e-12) * target, 0.0)
    keep = max(1, round(density * rows.shape[1]))
    mask = torch.zeros_like(rows, dtype=torch.bool)
    mask.scatter_(1, rows.abs().topk(keep, dim=1).indices, True)
    return rows * mask, mask


def _outgoing(consumer: nn.Module, units: int) -> torch.Tensor:
    """View of C's weight as [out, units, columns per unit]: unit j's columns are [:, j]."""
    return consumer.weight.view(consumer.weight.shape[0], units, -1)


def _net2wider(model, pair, m, producer, consumer, n, generator):
    source = torch.randint(0, n, (m,), generator=generator).to(producer.weight.device)
    with torch.no_grad():
        producer.weight[n:] = producer.weight[source]
        if producer.bias is not None:
            producer.bias[n:] = producer.bias[source]
        for name in pair.between:  # BatchNorms and depthwise convs: per-channel state
            module = get_module(model, name)
            for tensor in (module.weight, module.bias, getattr(module, "running_mean", None),
                           getattr(module, "running_var", None)):
                if tensor is not None:
                    tensor[n:] = tensor[source]
        share = torch.bincount(source, minlength=n).to(consumer.weight.dtype) + 1
        out = _outgoing(consumer, n + m)
        out[:, :n] /= share.view(1, -1, 1)
        out[:, n:] = out[:, source]


def check_init(init: str, init_density: float, layer: str) -> None:
    """A :class:`GrowthError` for an unknown initialiser name or a density outside (0, 1]."""
    if init not in INITIALIZERS:
        raise GrowthError(f"cannot initialise new units of '{layer}': unknown init "
                          f"'{init}' (choose one of {', '.join(INITIALIZERS)})")
    if not 0.0 < init_density <= 1.0:
        raise GrowthError(f"cannot initialise new units of '{layer}': init_density must be in "
                          f"(0, 1], got {init_density}")


@full_precision()   # spectra, bases and on-data passes in float32; rows cast to the weight's dtype
def initialize(init: str, model: nn.Module, pair: ExpandablePair, m: int, *,
               generator: torch.Generator | None = None, init_density: float = 1.0,
               spectrum: Spectrum | None = None,
               basis: torch.Tensor | None = None) -> torch.Tensor:
    """Write the values of the ``m`` new units of an already widened ``pair``.

    :param init: one of :data:`INITIALIZERS`.
    :param model: the widened model.
    :param pair: the widened pair.
    :param m: number of new units (the last ``m`` of the producer).
    :param generator: random generator (CPU).
    :param init_density: fraction of each new unit's incoming weights kept non-zero.
    :param spectrum: M and its SVD for ``on_data`` (computed before widening).
    :param basis: orthonormal columns in P's input space whose span new incoming rows avoid.
    :return: bool mask of P's weight, True where an entry may be non-zero.
    """
    check_init(init, init_density, pair.producer)
    producer = get_layer(model, pair.producer)
    consumer = get_layer(model, pair.consumer)
    weight = producer.weight
    n = weight.shape[0] - m
    mask = torch.ones_like(weight, dtype=torch.bool)

    if init == "net2wider":
        if init_density < 1.0 or basis is not None:
            raise GrowthError(f"cannot initialise '{pair.producer}' with net2wider: copies are "
                              "exact, so init_density < 1 and basis are not supported")
        _net2wider(model, pair, m, producer, consumer, n, generator)
        return mask

    dim = weight[0].numel()
    basis = _check_basis(basis, dim, pair.producer)
    if basis is not None:
        basis = basis.to(weight.device, weight.dtype)
    if init == "on_data":
        if spectrum is None:
            raise GrowthError(f"cannot initialise '{pair.producer}' on data: no batches given")
        spectrum = spectrum.padded_to(dim, pair.producer)
        rows = _top_directions(spectrum, m, basis, generator).to(weight.dtype)
    else:
        rows = torch.randn(m, dim, generator=generator).to(weight.device, weight.dtype)
        rows = _project_out(rows, basis)
    rows, new_mask = _scaled_sparse(rows, weight[:n].detach(), init_density)
    with torch.no_grad():
        weight[n:] = rows.view(m, *weight.shape[1:])
        mask[n:] = new_mask.view(m, *weight.shape[1:])
        if init == "random":
            out = _outgoing(consumer, n + m)
            scale = out[:, :n].pow(2).mean().sqrt()
            noise = torch.randn(out[:, n:].shape, generator=generator)
            out[:, n:] = noise.to(out.device, out.dtype) * scale
    return mask
