"""FreezingPlugin: importance → frozen masks → gradient gating, and/or subspace protection.

Callback order inside an experience (Avalanche 0.6): ``before_training_exp`` follows parameters
that grew from outside (e.g. the new class rows an ``IncrementalClassifier`` added in
``model_adaptation``) by padding their locks with free entries; ``before_update`` gates gradients
after every plugin's loss term and gradient change (``after_backward``) is in; ``after_update``
restores locked values after the optimizer step; ``after_training_exp`` scores the experience
on its last training batches and extends masks and bases.

With subspace gating alone, parameters that no subspace basis covers (a layer that is not a
Linear/Conv2d, such as LayerNorm, attention's in-projection or a positional embedding, or a
layer that never runs its own forward) get the best protection that applies to them, frozen
masks by importance as with ``gating="mask"``, said once in the log; BatchNorms follow the
``batchnorm`` option (:mod:`sparsegrow.protection.batchnorm`).
"""

from __future__ import annotations

import logging

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.errors import ConfigError
from sparsegrow.plugins.common import RecentBatches, choice, fraction, timed
from sparsegrow.protection.batchnorm import BATCHNORM, BatchNormGuard, batchnorm_parameters
from sparsegrow.protection.importance import SCORES, importance_scores
from sparsegrow.protection.masks import ParamLocks
from sparsegrow.protection.subspace import SubspaceMemory

GATINGS = ("mask", "subspace", "both")
_log = logging.getLogger(__name__)


class FreezingPlugin(SupervisedPlugin, supports_distributed=False):
    """Protect what earlier experiences learned: frozen masks and/or input-subspace protection.

    ``supports_distributed`` is False: masks, bases and the restore step act on the local
    model's parameters after the local optimizer step, and importance/bases are computed from
    the local process's batches only; under DDP the replicas would drift apart.

    :param importance: score used to pick entries to freeze: ``taylor`` (|θ·∂L/∂θ|), ``fisher``
        (mean squared gradient) or ``magnitude`` (|θ|).
    :param freeze_ratio: fraction of each tensor's still-free entries frozen at the end of every
        experience (masks only grow).
    :param gate_topk: fraction of free entries with the largest |gradient| that may update at
        each step (1.0 = all).
    :param gating: ``mask`` (frozen masks), ``subspace`` (GPM-style protection of the input
        subspaces of earlier experiences, no masks) or ``both``.
    :param energy: fraction of the input sample's energy a layer's subspace basis keeps; a
        number for every layer or {layer name: fraction} with an optional ``default``.
    :param project_every: with subspace gating, restore the protected subspace every this many
        optimizer steps (1 = exact projected-gradient training; larger is cheaper and still
        exact at the end of the experience and at growth events).
    :param importance_batches: number of last training minibatches of an experience used to
        score importance and to sample the layers' inputs.
    :param batchnorm: BatchNorm treatment: ``free`` (affine parameters and running statistics
        follow the newest data), ``freeze`` (each channel fixed from the end of the experience
        it was learned in) or ``cumulative`` (running statistics over all experiences).
    """

    def __init__(self, *, importance: str = "taylor", freeze_ratio: float = 0.3,
                 gate_topk: float = 1.0, gating: str = "mask", energy: float | dict = 0.9,
                 project_every: int = 100, importance_batches: int = 4,
                 batchnorm: str = "free"):
        super().__init__()
        choice("importance", importance, SCORES)
        choice("gating", gating, GATINGS)
        choice("batchnorm", batchnorm, BATCHNORM)
        self.batchnorm = BatchNormGuard(batchnorm)
        self._fallback_said = False
        if not isinstance(project_every, int) or project_every < 1:
            raise ConfigError(f"project_every must be a positive integer, got {project_every!r}")
        self.importance = importance
        self.freeze_ratio = fraction("freeze_ratio", freeze_ratio)
        self.gate_topk = fraction("gate_topk", gate_topk, low_open=True)
        self.gating = gating
        self.project_every = project_every
        self.locks = ParamLocks()
        try:
            self.subspace = SubspaceMemory(energy=energy)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.timings: dict[str, float] = {"importance": 0.0, "gating": 0.0}
        self._batches = RecentBatches(importance_batches)
        self._steps = 0

    @property
    def uses_masks(self) -> bool:
        return self.gating in ("mask", "both")

    @property
    def uses_subspace(self) -> bool:
        return self.gating in ("subspace", "both")

    @staticmethod
    def _params(strategy) -> dict[str, torch.Tensor]:
        return dict(strategy.model.named_parameters())

    # -- growth protocol (used by GrowthPlugin / SparseGrowPlugin) -----------------------------
    def prepare_growth(self, strategy) -> None:
        """Make the protected state exact right before the model grows."""
        if self.uses_subspace:
            self.subspace.project_(strategy.model, strategy.optimizer)
        self.locks.restore_(self._params(strategy))
        self.batchnorm.restore_(strategy.model)

    def growth_bases(self, layers) -> dict[str, torch.Tensor]:
        """Bases of the old inputs of ``layers``, for initialising new units in their
        orthogonal complement (empty without subspace gating)."""
        if not self.uses_subspace:
            return {}
        return {n: b for n in layers if (b := self.subspace.input_basis(n)) is not None}

    def adopt_growth(self, strategy, pins: dict[str, torch.Tensor]) -> None:
        """Follow grown parameters and keep the entries ``pins`` marks at zero."""
        params = self._params(strategy)
        self.locks.sync(params)
        self.subspace.sync(strategy.model)
        for name, zero in pins.items():
            self.locks.pin_zero(name, params[name], zero)

    def frozen_fraction(self) -> dict[str, float]:
        return self.locks.frozen_fraction()

    def subspace_dims(self) -> dict[str, int]:
        """Protected input directions per layer (empty without subspace gating)."""
        return self.subspace.sizes()

    # -- callbacks -------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kwargs):
        self.locks.sync(self._params(strategy))
        self.subspace.sync(strategy.model)
        self.batchnorm.start(strategy.model)
        self._batches.clear()

    def before_update(self, strategy, **kwargs):
        if self.locks.active or self.gate_topk < 1.0:
            with timed(self.timings, "gating"):
                self.locks.gate_(self._params(strategy), self.gate_topk)

    def after_update(self, strategy, **kwargs):
        self._steps += 1
        project = self.uses_subspace and self._steps % self.project_every == 0
        if project or self.locks.active:
            with timed(self.timings, "gating"):
                if project:
                    self.subspace.project_(strategy.model, strategy.optimizer)
                self.locks.restore_(self._params(strategy))
        if self.batchnorm.saved:
            with timed(self.timings, "gating"):
                self.batchnorm.restore_(strategy.model)

    def after_training_iteration(self, strategy, **kwargs):
        self._batches.add(strategy)

    def after_training_exp(self, strategy, **kwargs):
        with timed(self.timings, "gating"):
            self.prepare_growth(strategy)
        with timed(self.timings, "importance"):
            batches = self._batches.get()
            if self.uses_masks and self.freeze_ratio > 0:
                params = self._params(strategy)
                self.locks.sync(params)
                scores = importance_scores(strategy.model, batches, strategy._criterion,
                                           kind=self.importance)
                self.locks.freeze(params, scores, self.freeze_ratio)
            if self.uses_subspace:
                self.subspace.update(strategy.model, [x for x, _ in batches])
                if not self.uses_masks and self.freeze_ratio > 0:
                    self._freeze_uncovered(strategy, batches)
        self.batchnorm.end_experience(strategy.model)
        self._batches.clear()

    def _freeze_uncovered(self, strategy, batches) -> None:
        """Frozen masks for the parameters no subspace basis covers (BatchNorms aside)."""
        params = self._params(strategy)
        skip = self.subspace.covered() | batchnorm_parameters(strategy.model)
        names = [n for n, p in params.items() if p.requires_grad and n not in skip]
        if not names:
            return
        if not self._fallback_said:
            _log.warning("subspace gating cannot protect %d parameter(s) (%s): they get frozen "
                         "masks by %s importance instead", len(names),
                         ", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
                         self.importance)
            self._fallback_said = True
        self.locks.sync(params)
        scores = importance_scores(strategy.model, batches, strategy._criterion,
                                   kind=self.importance, names=names)
        self.locks.freeze(params, scores, self.freeze_ratio)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"locks": self.locks.state_dict(), "subspace": self.subspace.state_dict(),
                "batchnorm": self.batchnorm.state_dict(), "timings": dict(self.timings),
                "steps": self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.locks.load_state_dict(state["locks"])
        self.subspace.load_state_dict(state["subspace"])
        self.batchnorm.load_state_dict(state["batchnorm"])
        self.timings = dict(state["timings"])
        self._steps = state["steps"]
