"""How protection treats BatchNorm layers: their affine parameters and running statistics.

A BatchNorm is neither a Linear nor a Conv2d, so subspace protection does not cover it, yet in a
task-agnostic CNN every earlier experience is evaluated through its affine parameters and its
running statistics. Three treatments (``BATCHNORM``):

- ``free``: affine parameters train and running statistics follow the newest batches (momentum
  as the model sets it). Old experiences then see the newest experience's statistics.
- ``freeze``: at the end of every experience, every channel's affine parameters and running
  statistics are recorded, and restored after every optimizer step from then on. A channel that
  growth adds learns during the experience it is added in and is frozen at its end.
- ``cumulative``: running statistics become cumulative averages over every training batch of
  every experience (``momentum=None`` on each BatchNorm, which PyTorch's BatchNorm supports), so
  they describe all data seen; affine parameters train.
"""

from __future__ import annotations

import torch
import torch.nn as nn

BATCHNORM = ("free", "freeze", "cumulative")
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_STATE = ("weight", "bias", "running_mean", "running_var")


def batchnorms(model: nn.Module) -> dict[str, nn.Module]:
    """Every BatchNorm1d/2d of ``model`` by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, _NORMS)}


def batchnorm_parameters(model: nn.Module) -> set[str]:
    """Names of the BatchNorms' affine parameters."""
    return {f"{n}.{attr}" for n, m in batchnorms(model).items() for attr in ("weight", "bias")
            if getattr(m, attr) is not None}


class BatchNormGuard:
    """Apply one of :data:`BATCHNORM` to every BatchNorm of a model.

    :param mode: ``free``, ``freeze`` or ``cumulative``.
    """

    def __init__(self, mode: str = "free"):
        if mode not in BATCHNORM:
            raise ValueError(f"batchnorm must be one of {', '.join(BATCHNORM)}, got {mode!r}")
        self.mode = mode
        self.saved: dict[str, dict[str, torch.Tensor]] = {}

    def start(self, model: nn.Module) -> None:
        """Before training on an experience: switch running statistics to cumulative averages
        (``cumulative``)."""
        if self.mode == "cumulative":
            for module in batchnorms(model).values():
                module.momentum = None

    @torch.no_grad()
    def end_experience(self, model: nn.Module) -> None:
        """After an experience: record every channel's state (``freeze``)."""
        if self.mode != "freeze":
            return
        self.saved = {name: {attr: getattr(m, attr).detach().clone() for attr in _STATE
                             if getattr(m, attr) is not None}
                      for name, m in batchnorms(model).items()}

    @torch.no_grad()
    def restore_(self, model: nn.Module) -> None:
        """Write the recorded state back into the channels it was recorded for (``freeze``);
        channels added since then stay as they are."""
        if not self.saved:
            return
        modules = batchnorms(model)
        for name, state in self.saved.items():
            module = modules[name]
            for attr, value in state.items():
                getattr(module, attr)[: value.shape[0]] = value

    def to(self, device) -> None:
        """Move the recorded state to ``device`` (the model's, e.g. after a CPU-mapped load)."""
        self.saved = {n: {a: v.to(device) for a, v in s.items()} for n, s in self.saved.items()}

    def state_dict(self) -> dict:
        return {"mode": self.mode, "saved": {n: dict(s) for n, s in self.saved.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.mode = state["mode"]
        self.saved = {n: {a: v.clone() for a, v in s.items()} for n, s in state["saved"].items()}
