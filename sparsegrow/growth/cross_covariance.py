"""The error/input cross-covariance M of each expandable pair, and its spectrum.

For a pair P→C, a new unit k with incoming row w_k and outgoing column c_k = 0 adds c_k·σ(w_k·a_P)
to C's output. The loss gradient with respect to c_k is then, to first order in σ, M·w_k with

    M = mean over samples of δ_C ⊗ a_P        (shape [C's outputs, P's input features])

where δ_C = ∂L/∂(output of C) (before any activation) and a_P is P's input. The incoming rows
that let the first training steps reduce the loss fastest are M's top right singular vectors,
and the spectrum says how many directions carry the signal (METHOD.md).

Exact choices:

- The model runs in eval mode (no BatchNorm statistics updates, no dropout noise) and every
  module is put back in its own original mode; gradients are taken with ``torch.autograd.grad``
  with respect to the consumers' outputs only, so no parameter ``.grad`` is created or changed.
- ``loss_fn(output, y)`` is assumed to average over the batch (the usual reduction), so
  ∂L/∂z_n is already δ_n / N; M is the average over batches of Σ_n ∂L/∂z_n ⊗ a_n, i.e. the mean
  over samples of δ ⊗ a.
- Positions: for a Conv2d producer, a_P is the unfolded input patch (in_channels·kh·kw, the
  layout of one row of P's weight, so a singular vector *is* a kernel) averaged over P's output
  positions; for a Conv2d consumer, δ_C is averaged over C's output positions. Both sides are
  averaged per sample before the outer product because P's and C's positions do not correspond
  one to one (C's kernel, pooling and strides lie between them). Extra leading dimensions of a
  Linear's input/output (e.g. sequences) are averaged the same way.
- Wide pairs stay factored: M = Σ over samples of δ ⊗ a has rank at most the number of samples
  N, so when M would have more than ``DENSE_MAX`` entries (a VGG classifier: 4096 × 25088) it is
  kept as its two factors (N rows of δ, N rows of a) and its SVD comes from their QR
  decompositions, never forming M. Smaller pairs keep the dense M and its SVD as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsegrow.errors import GrowthError
from sparsegrow.growth.graph import ExpandablePair
from sparsegrow.growth.layers import get_layer
from sparsegrow.linalg import full_precision, thin_svd
from sparsegrow.measuring import set_measuring_mode


DENSE_MAX = 2 ** 22  # entries of M above which it is kept factored (16 MB in float32)


def _factored_svd(left: torch.Tensor, right: torch.Tensor):
    """Singular values and right singular vectors of leftᵀ·right from thin QRs of the factors
    (cost linear in M's dimensions, quadratic in the number of rows N)."""
    q_left, r_left = torch.linalg.qr(left.T)
    q_right, r_right = torch.linalg.qr(right.T)
    _, values, vh = thin_svd(r_left @ r_right.T)
    return values, vh @ q_right.T


@dataclass(frozen=True)
class Spectrum:
    """M of one pair with its thin SVD (``M = U diag(singular_values) directions``).

    M is either ``dense`` or ``factors`` (left [N, C's outputs], right [N, P's inputs]) with
    M = leftᵀ·right; :attr:`matrix` forms it either way.
    """

    dense: torch.Tensor | None
    singular_values: torch.Tensor
    directions: torch.Tensor
    factors: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def of(cls, matrix: torch.Tensor) -> "Spectrum":
        _, values, vh = thin_svd(matrix)
        return cls(matrix, values, vh)

    @classmethod
    def of_factors(cls, left: torch.Tensor, right: torch.Tensor) -> "Spectrum":
        values, vh = _factored_svd(left, right)
        return cls(None, values, vh, (left, right))

    @property
    def matrix(self) -> torch.Tensor:
        return self.dense if self.factors is None else self.factors[0].T @ self.factors[1]

    @property
    def inputs(self) -> int:
        """Number of P's input features M has columns for."""
        return self.directions.shape[1] if self.factors is None else self.factors[1].shape[1]

    def restricted(self, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Singular values and right singular vectors of M restricted to the orthogonal
        complement of ``basis`` (orthonormal columns in P's input space)."""
        if self.factors is None:
            _, values, vh = thin_svd(self.dense - (self.dense @ basis) @ basis.T)
            return values, vh
        left, right = self.factors
        return _factored_svd(left, right - (right @ basis) @ basis.T)

    def padded_to(self, dim: int, layer: str) -> "Spectrum":
        """M for an input space grown to ``dim`` features (an upstream layer widened after M was
        computed): the new input features get zero columns, so the new units ignore them."""
        have = self.inputs
        if have == dim:
            return self
        if have > dim:
            raise GrowthError(f"cannot initialise '{layer}' on data: M has {have} input columns "
                              f"but the layer has only {dim}")
        pad = (0, dim - have)
        if self.factors is None:
            return Spectrum(F.pad(self.dense, pad), self.singular_values,
                            F.pad(self.directions, pad))
        left, right = self.factors
        return Spectrum(None, self.singular_values, F.pad(self.directions, pad),
                        (left, F.pad(right, pad)))


def _patch_means(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``F.unfold`` patches of ``x`` for ``conv`` averaged over positions, as [N, C·kh·kw].

    Computed offset by offset from strided views of the padded input, which equals
    ``unfold(...).mean(-1)`` without materialising every patch.
    """
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    x = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    oh = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    means = [x[:, :, i * dh: i * dh + (oh - 1) * sh + 1: sh,
               j * dw: j * dw + (ow - 1) * sw + 1: sw].mean((2, 3))
             for i in range(kh) for j in range(kw)]
    return torch.stack(means, dim=2).flatten(1)


def _per_sample(t: torch.Tensor, conv: bool) -> torch.Tensor:
    """[N, features]: conv maps averaged over positions, Linear extra dimensions averaged."""
    if conv:
        return t.mean((2, 3))
    return t.flatten(1, -2).mean(1) if t.dim() > 2 else t


def cross_covariances(model: nn.Module, pairs: list[ExpandablePair], batches,
                      loss_fn) -> dict[str, torch.Tensor]:
    """M for every pair, keyed by producer name, from one forward/backward pass per batch.

    :param model: the model (left in its original train/eval mode, parameter grads untouched).
    :param pairs: the pairs to measure.
    :param batches: iterable of ``(x, y, ...)``; extra elements (e.g. task labels) are ignored.
    :param loss_fn: ``loss_fn(model(x), y) -> scalar`` averaged over the batch.
    """
    return {name: m if isinstance(m, torch.Tensor) else m[0].T @ m[1]
            for name, m in _measure(model, pairs, batches, loss_fn).items()}


@full_precision()   # M is a statistic: float32 whatever autocast the training step uses
def _measure(model, pairs, batches, loss_fn) -> dict:
    """{producer: dense M, or its factors (left, right) for a pair wider than DENSE_MAX}."""
    producers = {p.producer: get_layer(model, p.producer) for p in pairs}
    consumers = {p.consumer: get_layer(model, p.consumer) for p in pairs}
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def keep_input(name):
        def hook(module, args):
            x = args[0].detach()
            inputs[name] = (_patch_means(module, x) if isinstance(module, nn.Conv2d)
                            else _per_sample(x, False))
        return hook

    def keep_output(name):
        def hook(module, args, out):
            # Everything before C is frozen: make its output a leaf we can differentiate to.
            if not out.requires_grad:
                out = out.detach().requires_grad_(True)
            outputs[name] = out
            return out
        return hook

    handles = [m.register_forward_pre_hook(keep_input(n)) for n, m in producers.items()]
    # Prepend: C's own output, before modules that growth inserted after C run from a later hook.
    handles += [m.register_forward_hook(keep_output(n), prepend=True)
                for n, m in consumers.items()]
    device = next(model.parameters()).device
    sums = {p.producer: None for p in pairs}
    wide = {p.producer for p in pairs
            if consumers[p.consumer].weight.shape[0] * producers[p.producer].weight[0].numel()
            > DENSE_MAX}
    rows: dict[str, tuple[list, list]] = {name: ([], []) for name in wide}
    n_batches = 0
    modes = {m: m.training for m in model.modules()}
    set_measuring_mode(model)   # training's forward: see sparsegrow.measuring
    try:
        with torch.enable_grad():
            for batch in batches:
                x, y = batch[0].to(device), batch[1].to(device)
                loss = loss_fn(model(x), y)
                names = list(consumers)
                grads = dict(zip(names, torch.autograd.grad(
                    loss, [outputs[c] for c in names], allow_unused=True)))
                for p in pairs:
                    grad = grads[p.consumer]
                    if grad is None:
                        grad = torch.zeros_like(outputs[p.consumer])
                    delta = _per_sample(grad, isinstance(consumers[p.consumer], nn.Conv2d))
                    if p.producer in wide:
                        rows[p.producer][0].append(delta)
                        rows[p.producer][1].append(inputs[p.producer].to(delta.dtype))
                        continue
                    term = delta.T @ inputs[p.producer].to(delta.dtype)
                    sums[p.producer] = term if sums[p.producer] is None else sums[p.producer] + term
                n_batches += 1
                inputs.clear()
                outputs.clear()
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    if n_batches == 0:
        raise GrowthError("cannot compute the cross-covariance M: no batches were given")
    return {name: ((torch.cat(rows[name][0]) / n_batches, torch.cat(rows[name][1]))
                   if name in wide else total / n_batches) for name, total in sums.items()}


def spectra(model: nn.Module, pairs: list[ExpandablePair], batches,
            loss_fn) -> dict[str, Spectrum]:
    """:func:`cross_covariances` with the SVD of each M, keyed by producer name."""
    return {name: Spectrum.of(m) if isinstance(m, torch.Tensor) else Spectrum.of_factors(*m)
            for name, m in _measure(model, pairs, batches, loss_fn).items()}
