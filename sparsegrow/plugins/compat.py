"""Fail-fast checks for plugin combinations and strategies that cannot work with a growing or
protected model, and a warning for strategies that train around the plugins' callbacks.

Each rule was found by running the combination (see the team's Avalanche facts note and
``tests/plugins/test_strategy_compat.py``): EWC, MAS, AGEM and Replay follow parameters that
grow at the end of a dimension, these do not.
"""

from __future__ import annotations

import warnings

import torch
from avalanche.models.packnet import PackNetPlugin
from avalanche.training import (AR1, SCR, AETraining, ExpertGateStrategy, FeatureReplay,
                                ICaRLLossPlugin, LearningToPrompt, PackNet, PNNStrategy,
                                StreamingLDA, VAETraining)
from avalanche.training.plugins import (AGEMPlugin, CWRStarPlugin, FromScratchTrainingPlugin,
                                        GEMPlugin, LFLPlugin, SynapticIntelligencePlugin)
from avalanche.training.utils import ParamData

from sparsegrow.errors import IncompatiblePluginError

_INCOMPATIBLE = {
    SynapticIntelligencePlugin: "SI (SynapticIntelligencePlugin) stores flattened copies of "
    "every parameter and silently misaligns them when a layer grows new units or input columns",
    LFLPlugin: "LFL (LFLPlugin) keeps a copy of the previous model whose layer shapes no longer "
    "match after growth and crashes",
    PackNetPlugin: "PackNet's pruning masks and hooks are tied to the original parameter "
    "tensors, which growth replaces",
    CWRStarPlugin: "CWR* consolidates the output layer's weights in copies of their shape at "
    "the start, which no longer match once growth widens the layer's input",
    ICaRLLossPlugin: "iCaRL's distillation loads the current weights into a copy of the model "
    "made at its first experience, whose shapes growth no longer matches",
}
# strategies that own their architecture, train no parameter by gradient, or whose loss is not
# a function of (output, label), which growth's passes over data evaluate: growth cannot apply
_NO_GROWTH = {
    PNNStrategy: "PNN adds a column of its own per task and freezes the old ones",
    ExpertGateStrategy: "Expert Gate builds an expert network and an autoencoder per task",
    AETraining: "AETraining trains Expert Gate's autoencoders on a frozen feature extractor",
    AR1: "AR1 trains a pretrained MobileNet above a fixed latent layer with its own latent "
    "replay",
    LearningToPrompt: "Learning to Prompt trains a prompt pool on a frozen pretrained ViT",
    StreamingLDA: "StreamingLDA fits a closed-form LDA head on a fixed feature extractor and "
    "takes no gradient step",
    FeatureReplay: "FeatureReplay replays stored features of the layer before the head, whose "
    "width growth changes",
    PackNet: _INCOMPATIBLE[PackNetPlugin],
    SCR: "SCR's contrastive loss needs the augmented views its own training step builds",
    VAETraining: "a VAE's loss compares its reconstruction with the input, not with a label",
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


def check_strategy(strategy) -> None:
    """:func:`check_plugins` on the strategy's plugins, and an
    :class:`IncompatiblePluginError` if growth is added to a strategy it cannot apply to."""
    check_plugins(strategy.plugins)
    growers = [type(p).__name__ for p in strategy.plugins if grows(p)]
    for cls, reason in _NO_GROWTH.items():
        if growers and isinstance(strategy, cls):
            raise IncompatiblePluginError(
                f"{growers[0]} grows the model, which {cls.__name__} cannot use: {reason}. "
                f"Use {cls.__name__} without {growers[0]}.")


def warn_bypassed(plugin, strategy, what: str) -> None:
    """Warn that ``strategy`` trained an experience without the callbacks ``plugin`` acts in
    (``what`` did not run), instead of letting the plugin silently do nothing."""
    warnings.warn(f"{type(strategy).__name__} trained experience "
                  f"{strategy.clock.train_exp_counter} without Avalanche's per-iteration plugin "
                  f"callbacks, so {type(plugin).__name__}'s {what} did not run: use a strategy "
                  "that trains through the template's training loop", stacklevel=2)


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


# plugins that take gradients of the whole model on their memory at the start of every
# iteration and project the iteration's gradient against them after the backward pass
_ITERATION_REFERENCES = (GEMPlugin, AGEMPlugin)


def refresh_iteration_references(strategy, grower) -> None:
    """Take again, on the grown model, the gradient references of GEM and A-GEM that ran
    before ``grower`` (a plugin of the strategy, or a part of one) in this iteration's
    callbacks: theirs have the old shapes, and the projection after the backward pass would
    fail on a size mismatch."""
    for plugin in strategy.plugins:
        if plugin is grower or any(v is grower for v in vars(plugin).values()):
            return
        if isinstance(plugin, _ITERATION_REFERENCES):
            plugin.before_training_iteration(strategy)


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
