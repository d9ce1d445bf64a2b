"""The output layer's rows of classes not seen yet.

A class-incremental stream trains the output rows of later classes only once their classes
arrive. Before that, such a row has learned nothing of its own to protect, only "not me" on old
inputs, which replay keeps true far better than a frozen response does: anchoring it to old
inputs leaves the new class hardly learnable. Protection therefore covers the rows of classes
seen so far, and a row joins when its class first appears.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sparsegrow.measuring import set_measuring_mode


@torch.no_grad()
def output_layer(model: nn.Module, x: torch.Tensor) -> str | None:
    """Name of the Linear/Conv2d whose output *is* the model's output on ``x`` (None if the
    model post-processes its last layer's output, e.g. masks or concatenates logits)."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, n=n: outputs.__setitem__(n, out))
             for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    was_training = model.training
    set_measuring_mode(model)   # training's forward: see sparsegrow.measuring
    try:
        y = model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return next((n for n, out in outputs.items() if out is y), None)


def seen_rows(n_rows: int, seen: set[int], *, device=None) -> torch.Tensor:
    """Bool vector over ``n_rows`` output rows, True for the classes in ``seen``."""
    rows = torch.zeros(n_rows, dtype=torch.bool, device=device)
    idx = [c for c in seen if 0 <= c < n_rows]
    if idx:
        rows[idx] = True
    return rows


def is_class_incremental(experience) -> bool:
    """Whether the stream ``experience`` comes from brings different classes in different
    experiences (False when Avalanche does not record the classes, as for domain streams)."""
    stream = getattr(experience, "origin_stream", None)
    try:
        sets = {frozenset(int(c) for c in e.classes_in_this_experience) for e in stream}
    except (AttributeError, TypeError):
        return False
    return len(sets) > 1
