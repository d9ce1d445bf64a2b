"""Per-entry importance of parameters: which weights the current experience relies on.

- ``taylor``: first-order saliency |θ · ∂L/∂θ|, averaged over batches (the loss change if the
  entry were set to zero, to first order).
- ``fisher``: mean over batches of (∂L/∂θ)², the empirical Fisher diagonal with batch gradients.
- ``magnitude``: |θ| (no data needed).

Scores are computed with ``torch.autograd.grad`` in eval mode, so the ``.grad`` fields other code
may rely on, BatchNorm running statistics and dropout randomness are left untouched.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn as nn

from sparsegrow.errors import ConfigError
from sparsegrow.linalg import full_precision
from sparsegrow.measuring import set_measuring_mode

SCORES = ("taylor", "fisher", "magnitude")


def check_score(kind: str) -> str:
    """``kind`` if it names a score, else a :class:`ConfigError` listing the choices."""
    if kind not in SCORES:
        raise ConfigError(f"unknown importance score '{kind}' (choose one of {', '.join(SCORES)})")
    return kind


@full_precision()   # statistics in float32 whatever autocast the training step uses
def importance_scores(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                      kind: str = "taylor",
                      names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Importance of every entry of the model's trainable parameters.

    :param model: the model to score (its mode is restored afterwards).
    :param batches: ``(x, y)`` pairs on the model's device; not used for ``magnitude``.
    :param loss_fn: ``loss_fn(output, y)`` returning a scalar (mean over the batch).
    :param kind: one of :data:`SCORES`.
    :param names: parameter names to score (default: all that require grad).
    :return: {parameter name: float tensor of the parameter's shape}.
    """
    check_score(kind)
    wanted = None if names is None else set(names)
    params = {n: p for n, p in model.named_parameters()
              if p.requires_grad and (wanted is None or n in wanted)}
    if kind == "magnitude":
        return {n: p.detach().abs().clone() for n, p in params.items()}

    totals = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    count = 0
    was_training = model.training
    set_measuring_mode(model)   # training's forward: see sparsegrow.measuring
    try:
        for x, y in batches:
            loss = loss_fn(model(x), y)
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for (n, p), g in zip(params.items(), grads):
                if g is None:
                    continue
                term = (p.detach() * g).abs() if kind == "taylor" else g * g
                totals[n] += term.float()
            count += 1
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(f"importance '{kind}' needs at least one batch of data")
    return {n: t / count for n, t in totals.items()}
