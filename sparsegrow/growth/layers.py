"""Small helpers on Linear/Conv2d layers shared by the growth operations."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError

LAYER_TYPES = (nn.Linear, nn.Conv2d)


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or a :class:`GrowthError` naming it."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise GrowthError(f"unknown layer '{name}': the model has no module of that name") from None


def get_layer(model: nn.Module, name: str) -> nn.Linear | nn.Conv2d:
    """The Linear/Conv2d called ``name``, or a :class:`GrowthError` naming it and its type."""
    module = get_module(model, name)
    if not isinstance(module, LAYER_TYPES):
        raise GrowthError(f"layer '{name}' is a {type(module).__name__}; only Linear and Conv2d "
                          "layers can be grown")
    return module


def width(layer: nn.Module) -> int:
    """Number of output features (Linear) or channels (Conv2d)."""
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def default_uniform(shape, fan_in: int, like: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-1/√fan_in, 1/√fan_in): PyTorch's default Linear/Conv2d initialisation scale.

    Drawn on the CPU (a ``torch.Generator`` is device-bound) and moved to ``like``'s device/dtype.
    """
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    values = torch.rand(shape, generator=generator) * (2 * bound) - bound
    return values.to(device=like.device, dtype=like.dtype)
