"""Fail-fast checks for plugin combinations that cannot work with a growing model.

Each rule was found by running the combination (see the team's Avalanche facts note): EWC, MAS,
AGEM and Replay follow parameters that grow at the end of a dimension, these do not.
"""

from __future__ import annotations

import torch
from avalanche.models.packnet import PackNetPlugin
from avalanche.training.plugins import (FromScratchTrainingPlugin, LFLPlugin,
                                        SynapticIntelligencePlugin)
from avalanche.training.utils import ParamData

from sparsegrow.errors import IncompatiblePluginError

_INCOMPATIBLE = {
    SynapticIntelligencePlugin: "SI (SynapticIntelligencePlugin) stores flattened copies of "
    "every parameter and silently misaligns them when a layer grows new units or input columns",
    LFLPlugin: "LFL (LFLPlugin) keeps a copy of the previous model whose layer shapes no longer "
    "match after growth and crashes",
    PackNetPlugin: "PackNet's pruning masks and hooks are tied to the original parameter "
    "tensors, which growth replaces",
}
# plugins that contradict protection itself, with or without growth
_UNPROTECTABLE = {
    FromScratchTrainingPlugin: "FromScratchTraining resets the weights to their initial values "
    "at every experience, which the protection would undo (it restores what earlier "
    "experiences learned) and grown layers would escape (their new shapes are not reset), so "
    "the training would silently not be from scratch",
}


def grows(plugin) -> bool:
    """Whether ``plugin`` changes the model's parameters during training."""
    return bool(getattr(plugin, "grows_model", False))


def protects(plugin) -> bool:
    """Whether ``plugin`` keeps what earlier experiences learned (masks, subspaces)."""
    return bool(getattr(plugin, "protects_model", False))


def check_plugins(plugins) -> None:
    """Raise :class:`IncompatiblePluginError` if ``plugins`` combine growth with a plugin that
    cannot follow a growing model, or growth or protection with one that resets the model.

    :param plugins: the strategy's plugin list (any order).
    """
    growers = [type(p).__name__ for p in plugins if grows(p)]
    ours = growers or [type(p).__name__ for p in plugins if protects(p)]
    for plugin in plugins:
        for cls, reason in _UNPROTECTABLE.items():
            if ours and isinstance(plugin, cls):
                raise IncompatiblePluginError(
                    f"{ours[0]} cannot be combined with {type(plugin).__name__}: {reason}. "
                    f"Train the from-scratch baseline without {ours[0]}.")
        for cls, reason in _INCOMPATIBLE.items():
            if growers and isinstance(plugin, cls):
                raise IncompatiblePluginError(
                    f"{growers[0]} grows the model, which cannot be combined with "
                    f"{type(plugin).__name__}: {reason}. Remove one of the two plugins "
                    "(or use EWC/MAS/Replay/LwF, which follow growth).")


def _param_data(obj, depth=0):
    """Every ``ParamData`` reachable from ``obj`` through dicts, lists and plugin attributes."""
    if isinstance(obj, ParamData):
        yield obj
    elif depth < 4 and isinstance(obj, dict):
        for value in obj.values():
            yield from _param_data(value, depth + 1)
    elif depth < 4 and isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _param_data(value, depth + 1)


def follow_growth(plugins, model: torch.nn.Module) -> None:
    """Pad other plugins' per-parameter buffers (Avalanche ``ParamData``: EWC's importances and
    saved parameters, MAS, ...) to the grown parameter shapes, one dimension at a time.

    Avalanche pads a ``ParamData`` lazily, but only when a single dimension grew; a hidden layer
    that is both a producer and a consumer of one growth event grows rows and columns at once.
    New entries get zero importance and a zero reference value, i.e. no penalty.
    """
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    for plugin in plugins:
        for data in _param_data(vars(plugin)):
            new = shapes.get(data.name)
            if new is None or tuple(data.shape) == new or len(new) != len(data.shape):
                continue
            shape = list(data.shape)
            for dim, size in enumerate(new):
                if size > shape[dim]:
                    shape[dim] = size
                    data.expand(torch.Size(shape))
