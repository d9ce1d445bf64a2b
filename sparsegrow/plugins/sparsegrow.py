"""SparseGrowPlugin: late-stage data-driven sparse growth + gradient-gated freezing (METHOD.md).

It is a composition: one :class:`GrowthPlugin` (widen, data-driven size, on-data sparse init)
and one :class:`FreezingPlugin` (importance masks and/or subspace protection), wired so that the
growth makes the protection exact first, initialises new units in the complement of the old
inputs' subspace (with subspace gating), and hands the grown parameters and the sparse-init
zeros to the protection. Either part can be switched off for ablations.
"""

from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin

from sparsegrow.growth import Grower
from sparsegrow.plugins.freezing import FreezingPlugin
from sparsegrow.plugins.growth import GrowthPlugin
from sparsegrow.plugins.options import (BUDGET, GrowthOptions, ProtectionOptions,
                                        growth_kwargs, option_group, protection_kwargs, resolve)
from sparsegrow.plugins.replaced import ModelWatch

_CALLBACKS = ("before_training", "before_training_exp", "before_training_iteration",
              "after_backward", "before_update", "after_update", "before_eval", "after_eval")


class SparseGrowPlugin(SupervisedPlugin, supports_distributed=False):
    """SparseGrow as one Avalanche plugin.

    ``supports_distributed`` is False for the reasons given on its two parts (local parameter
    replacement and local restore steps).

    The top-level keywords are the knobs a user turns: what grows, how strongly old knowledge
    is protected, the parameter budget. Expert and ablation switches are grouped in
    :class:`~sparsegrow.plugins.options.GrowthOptions` and
    :class:`~sparsegrow.plugins.options.ProtectionOptions` (where every default lives, with the
    rules of the automatic ones); the recommended configurations are named recipes
    (:meth:`recipe`, :mod:`sparsegrow.recipes`). How the defaults were chosen, and what they
    score, is in RESULTS.md, tables 2b, 3a, 5 and 7a. For example
    ``SparseGrowPlugin(growth={"units": 20, "grow_at": 0.0})`` (a mapping, as in YAML),
    ``SparseGrowPlugin(protection=ProtectionOptions(gating="mask"))`` or
    ``SparseGrowPlugin.recipe("progressive", budget=4.0)``.

    On a class-incremental stream (detected at the first experience) the automatic protection
    settings become those that won the validation search with replay: hidden-layer energy 0.3,
    the head left free, restores every 10 steps
    (:data:`~sparsegrow.plugins.options.STREAM_DEFAULTS`).

    Added to any Avalanche strategy it also stops training that diverged with one line
    (:mod:`sparsegrow.divergence`), follows a model the strategy replaces or reshapes (GDumb;
    :mod:`sparsegrow.plugins.replaced`), grows and protects once per real experience on online
    streams (:mod:`sparsegrow.plugins.online`), and refuses in one line the strategies growth
    cannot apply to (:mod:`sparsegrow.plugins.compat`; ``tests/plugins/test_strategy_compat.py``
    holds the outcome for every template Avalanche exports).

    :param layers: what grows: ``"auto"`` (every expandable layer) or a list of producer names.
    :param subspace_energy: how strongly old knowledge is protected: the fraction of the old
        inputs' energy each layer's protected subspace keeps (subspace gating), a number or
        {layer name: fraction} with an optional ``default``. ``None``: by the kind of stream
        (0.9, or 0.3 on a class-incremental stream). Higher forgets less and learns less.
    :param budget: the most parameters growth may bring the model to: an int is a count, a
        float a multiple of the model's size at the first experience (default
        :data:`~sparsegrow.plugins.options.BUDGET`, 10×); ``None``: no limit. Each experience
        may spend the budget left spread over the experiences left (:class:`GrowthPlugin`).
    :param growth: ``True`` (the default growth), ``False`` (no growth: the protection alone,
        e.g. as an ablation), or :class:`~sparsegrow.plugins.options.GrowthOptions` or a
        mapping of its fields.
    :param protection: ``True`` (the default protection), ``False`` (growth alone), or
        :class:`~sparsegrow.plugins.options.ProtectionOptions` or a mapping of its fields.
    :param seed: seed of the random parts of initialisation (the global RNG is not used).
    :raises ConfigError: an unknown option of a group, a bad value, or two options that cannot
        go together (the message names both).

    The options it runs with, automatic defaults resolved, are ``options["growth"]`` and
    ``options["protection"]`` (``None`` for a part switched off); the parts themselves are
    ``growth`` (:class:`GrowthPlugin`) and ``freezing`` (:class:`FreezingPlugin`).
    """

    grows_model = protects_model = True

    def __init__(self, *, layers: str | list[str] = "auto",
                 subspace_energy: float | dict[str, float] | None = None,
                 budget: int | float | None = BUDGET,
                 growth: bool | GrowthOptions | dict[str, Any] = True,
                 protection: bool | ProtectionOptions | dict[str, Any] = True,
                 seed: int = 0):
        super().__init__()
        grow, protect = resolve(option_group("growth", GrowthOptions, growth),
                                option_group("protection", ProtectionOptions, protection),
                                subspace_energy=subspace_energy, budget=budget,
                                layers=layers)
        self.options = {"growth": grow, "protection": protect}
        self.growth = GrowthPlugin(op="widen", layers=layers, budget=budget, seed=seed,
                                   **growth_kwargs(grow)) if grow else None
        self.freezing = FreezingPlugin(subspace_energy=subspace_energy,
                                       **protection_kwargs(protect, grow)) if protect else None
        if self.growth is not None:
            self.growth.protection = self.freezing
        self.grows_model, self.protects_model = grow is not None, protect is not None
        self._growable_known = False
        self._analysed = ModelWatch()   # a replaced model (GDumb) is analysed again
        self._example = None            # a recent input: strategy.mb_x is gone after an eval

    @classmethod
    def recipe(cls, name: str, **overrides) -> SparseGrowPlugin:
        """A new plugin configured as the named recipe (:mod:`sparsegrow.recipes`).

        :param name: the recipe's name, e.g. ``"progressive"``.
        :param overrides: keywords that replace or add to the recipe's; a mapping merges into
            the recipe's mapping of the same keyword (``growth={"units": 32}`` keeps the
            recipe's other growth options).
        :raises ConfigError: an unknown recipe or keyword, or a combination the plugin rejects.
        """
        from sparsegrow import recipes

        return recipes.build(name, **overrides)

    def after_training_exp(self, strategy, **kwargs):
        """Tell the protection which layers growth can widen (the model has run by now, so the
        analysis has an example batch), then run ``after_training_exp`` of both parts."""
        replaced = self._analysed.replaced(strategy.model)
        if self.freezing is not None and (replaced or not self._growable_known):
            # also without growth: the growth: false ablation must protect the same way
            pairs = Grower(strategy.model, example=self._example).pairs
            self.freezing.set_growable([p.consumer for p in pairs])
            self._growable_known = True
        for part in self.parts:
            part.after_training_exp(strategy, **kwargs)

    def after_training_iteration(self, strategy, **kwargs):
        """Keep a few inputs of the batch for the analysis, then run
        ``after_training_iteration`` of both parts."""
        self._example = strategy.mb_x[:2].detach()
        for part in self.parts:
            part.after_training_iteration(strategy, **kwargs)

    @property
    def parts(self) -> list:
        return [p for p in (self.growth, self.freezing) if p is not None]

    @property
    def timings(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.parts:
            out.update(part.timings)
        return out

    def state_dict(self) -> dict:
        return {"growth": self.growth.state_dict() if self.growth else None,
                "freezing": self.freezing.state_dict() if self.freezing else None}

    def load_state_dict(self, state: dict) -> None:
        for part, key in ((self.growth, "growth"), (self.freezing, "freezing")):
            if part is not None:
                part.load_state_dict(state[key])


def _forward(name):
    def callback(self, strategy, **kwargs):
        for part in self.parts:
            getattr(part, name)(strategy, **kwargs)
    callback.__name__ = name
    callback.__doc__ = f"Run ``{name}`` of the growth part, then of the protection part."
    return callback


for _name in _CALLBACKS:
    setattr(SparseGrowPlugin, _name, _forward(_name))
