"""Per-parameter tensors (frozen masks, sparse masks, importance scores) that follow growth."""

from __future__ import annotations

import torch

from sparsegrow.errors import GrowthError
from sparsegrow.growth.surgery import Replaced, pad_to


class TrackedTensors:
    """Tensors registered per parameter name and key; padded with their ``fill`` on growth.

    Every tracked tensor has the shape of its parameter, so appending units at the end of a
    dimension of the parameter appends ``fill`` entries at the end of the same dimension.
    """

    def __init__(self):
        self._entries: dict[str, dict[str, tuple[torch.Tensor, object]]] = {}

    def track(self, param_name: str, key: str, tensor: torch.Tensor, *, fill,
              shape: torch.Size) -> None:
        """Register (or replace) ``tensor`` under ``(param_name, key)``.

        :param shape: the parameter's current shape, which ``tensor`` must have.
        """
        if tuple(tensor.shape) != tuple(shape):
            raise GrowthError(f"cannot track '{key}' for parameter '{param_name}': tensor shape "
                              f"{tuple(tensor.shape)} differs from the parameter's {tuple(shape)}")
        self._entries.setdefault(param_name, {})[key] = (tensor, fill)

    def get(self, param_name: str, key: str) -> torch.Tensor:
        """The current (possibly padded) tensor registered under ``(param_name, key)``."""
        try:
            return self._entries[param_name][key][0]
        except KeyError:
            raise GrowthError(f"no tensor '{key}' is tracked for parameter "
                              f"'{param_name}'") from None

    def grow(self, replaced: Replaced) -> None:
        """Pad every tensor tracked for a replaced parameter to the new parameter's shape."""
        for name, (_, new) in replaced.items():
            for key, (tensor, fill) in self._entries.get(name, {}).items():
                self._entries[name][key] = (pad_to(tensor, new.shape, fill), fill)
