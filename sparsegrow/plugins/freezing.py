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
from typing import get_args

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.divergence import DivergenceGuard
from sparsegrow.errors import ConfigError
from sparsegrow.linalg import full_precision
from sparsegrow.plugins.common import (RecentBatches, choice, fraction, model_device,
                                       refuse_distributed, settle, timed)
from sparsegrow.plugins.compat import check_strategy, warn_bypassed
from sparsegrow.plugins.online import ExperienceSpan
from sparsegrow.plugins.options import (STREAM_DEFAULTS, BatchNorm, Gating, Head, Importance,
                                        ProtectionOptions)
from sparsegrow.plugins.replaced import (ModelWatch, drop_unfollowable_bases,
                                         drop_unfollowable_locks)
from sparsegrow.protection.batchnorm import BATCHNORM, BatchNormGuard, batchnorm_parameters
from sparsegrow.protection.importance import SCORES, importance_scores
from sparsegrow.protection.classes import is_class_incremental, output_layer, seen_rows
from sparsegrow.protection.masks import ParamLocks
from sparsegrow.protection.quiet import quiet_offsets
from sparsegrow.protection.subspace import SubspaceMemory, eval_passes, settled_rows

GATINGS = get_args(Gating)
HEAD_PROTECTION = get_args(Head)
_log = logging.getLogger(__name__)


def _rows_from(layer: torch.nn.Module, start: int) -> torch.Tensor:
    """Bool mask of ``layer``'s output rows from ``start`` on (the units growth added)."""
    return torch.arange(layer.weight.shape[0], device=layer.weight.device) >= start


class FreezingPlugin(SupervisedPlugin, supports_distributed=False):
    """Protect what earlier experiences learned: frozen masks and/or input-subspace protection.

    ``supports_distributed`` is False: masks, bases and the restore step act on the local
    model's parameters after the local optimizer step, and importance/bases are computed from
    the local process's batches only; under DDP the replicas would drift apart.

    Its keywords mean what the fields of the same names of
    :class:`~sparsegrow.plugins.options.ProtectionOptions` and
    :class:`~sparsegrow.plugins.options.GrowthOptions` (``isolate``, ``quiet_margin``,
    ``free_new_units``) mean, with the same defaults, except that new units get no treatment
    of their own unless asked (``isolate`` False: alone, this plugin does not know whether
    growth will happen).

    :param importance: score used to pick entries to freeze: ``taylor`` (|θ·∂L/∂θ|), ``fisher``
        (mean squared gradient; *experimental*) or ``magnitude`` (|θ|; *experimental*).
    :param freeze_ratio: fraction of each tensor's still-free entries frozen at the end of every
        experience (masks only grow).
    :param gate_topk: fraction of free entries with the largest |gradient| that may update at
        each step (1.0 = all; *experimental*).
    :param gating: ``mask`` (frozen masks), ``subspace`` (GPM-style protection of the input
        subspaces of earlier experiences, no masks) or ``both``.
    :param subspace_energy: fraction of the input sample's energy a layer's subspace basis
        keeps; a number for every layer or {layer name: fraction} with an optional ``default``.
        ``None``: 0.9 on a domain-incremental stream, 0.3 on a class-incremental one
        (:data:`STREAM_DEFAULTS`; the kind of stream is read from Avalanche's record of the
        classes of each experience at the first experience).
    :param project_every: with subspace gating, restore the protected subspace every this many
        optimizer steps (1 = exact projected-gradient training; larger is cheaper and still
        exact at the end of the experience and at growth events). ``None``: 100 on a
        domain-incremental stream, 10 on a class-incremental one.
    :param batches: number of last training minibatches of an experience used to
        score importance and to sample the layers' inputs.
    :param isolate: keep the incoming weights of units added by growth in the
        complement of the old inputs' subspace during training, in every gating mode (with
        ``mask`` a subspace memory is kept for that alone), so that new units stay silent on
        old inputs and their outgoing weights cannot move old predictions.
    :param quiet_margin: with ``isolate``, also lower each new unit's threshold by this
        many standard deviations of its response on the current experience's recent inputs
        (after turning it to respond positively on average), so that the part of old inputs
        its isolation does not reach stays below it (:mod:`sparsegrow.protection.quiet`;
        0 = off; for ReLU-like activations, and only on layers with a bias).
    :param head: subspace protection of the output layer: ``all`` rows, the rows of classes
        ``seen`` so far (a row joins once its class has been trained), ``none`` (these three
        fixed: *experimental*, no run used one), or ``auto``:
        ``seen`` until an experience brings classes not seen before, ``none`` from then on (a
        class-incremental stream: the head must be recalibrated between old and new classes,
        which replay does and a frozen response to old inputs forbids; see
        :mod:`sparsegrow.protection.classes`).
    :param free_new_units: leave the units growth adds unprotected until the experience they
        were grown in ends (subspace gating): they learn it in every input direction, the
        first layer's included, and are protected like every other unit from then on. Old
        inputs reach them unless the growth's birth gate keeps them away (``birth_gate`` of
        :class:`GrowthPlugin`); both ways paid on the streams measured (RESULTS.md table 7c).
        Excludes ``isolate``.
    :param growable_energy: energy of the layers whose input growth can widen (the consumers
        of expandable pairs, set by :meth:`set_growable`); ``None``: as ``subspace_energy``.
        Growth gives such a layer input room back, so it can afford stricter protection than
        the first layer, whose input (the data) never grows.
    :param batchnorm: BatchNorm treatment: ``free`` (affine parameters and running statistics
        follow the newest data), ``freeze`` (each channel fixed from the end of the experience
        it was learned in) or ``cumulative`` (running statistics over all experiences).
    """

    protects_model = True

    def __init__(self, *, gating: Gating = ProtectionOptions.gating,
                 subspace_energy: float | dict | None = None,
                 importance: Importance = ProtectionOptions.importance,
                 freeze_ratio: float = ProtectionOptions.freeze_ratio,
                 gate_topk: float = ProtectionOptions.gate_topk,
                 project_every: int | None = ProtectionOptions.project_every,
                 head: Head = ProtectionOptions.head,
                 growable_energy: float | None = None,
                 batchnorm: BatchNorm = ProtectionOptions.batchnorm,
                 batches: int = ProtectionOptions.batches,
                 isolate: bool = False, quiet_margin: float = 0.0,
                 free_new_units: bool = False):
        super().__init__()
        choice("importance", importance, SCORES)
        choice("gating", gating, GATINGS)
        choice("batchnorm", batchnorm, BATCHNORM)
        self.batchnorm = BatchNormGuard(batchnorm)
        self._fallback_said = False
        if project_every is not None and (not isinstance(project_every, int)
                                          or project_every < 1):
            raise ConfigError(f"project_every must be a positive integer, got {project_every!r}")
        # None: the stream's default (STREAM_DEFAULTS), resolved at the first experience
        self._given = {"subspace_energy": subspace_energy is not None,
                       "project_every": project_every is not None}
        energy = (STREAM_DEFAULTS["domain"]["subspace_energy"] if subspace_energy is None
                  else subspace_energy)
        project_every = project_every or STREAM_DEFAULTS["domain"]["project_every"]
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
        self.isolate_growth = bool(isolate)
        if not isinstance(quiet_margin, (int, float)) or quiet_margin < 0:
            raise ConfigError(f"quiet_margin must be a number ≥ 0, got {quiet_margin!r}")
        if quiet_margin > 0 and not self.isolate_growth:
            raise ConfigError("quiet_margin lowers the thresholds of isolated new units: it "
                              "needs isolate: true")
        self.quiet_margin = float(quiet_margin)
        if free_new_units and self.isolate_growth:
            raise ConfigError("free_new_units leaves new units free in every input direction, "
                              "isolate keeps them orthogonal to old inputs: set "
                              "isolate: false with it")
        if free_new_units and gating == "mask":
            raise ConfigError("free_new_units exempts new units from subspace protection: it "
                              "needs gating 'subspace' or 'both', not 'mask'")
        self.free_new_units = bool(free_new_units)
        self._experience_widths: dict[str, int] = {}   # protected layers' widths at its start
        self.growable_energy = (None if growable_energy is None
                                else fraction("growable_energy", growable_energy))
        choice("head", head, HEAD_PROTECTION)
        self.head = head
        self._class_incremental = False         # an experience brought classes not seen before
        self._stream: str | None = None         # "class" or "domain", known at the first experience
        self.timings: dict[str, float] = {"importance": 0.0, "gating": 0.0}
        self._grown_from: dict[str, int] = {}   # layer → first row added by growth
        self._widths: dict[str, int] = {}       # layer widths right before a growth event
        self._seen: set[int] = set()            # classes of the experiences trained so far
        self._output_layer: str | None = None           # the output layer (found on data)
        self._batches = RecentBatches(batches)
        self._steps = 0
        self._pending: list = []   # CUDA events of per-step timings, settled once per experience
        self._protected: dict | None | bool = False   # settled _rows(); False: to recompute
        self._protected_key: tuple | None = None       # _rows_key() when last settled
        self.divergence = DivergenceGuard()   # importance and bases: never on non-finite data
        self._model = ModelWatch()
        self._span = ExperienceSpan()   # online streams: the real experience
        self._steps_at_start = 0

    @property
    def uses_masks(self) -> bool:
        return self.gating in ("mask", "both")

    @property
    def uses_subspace(self) -> bool:
        return self.gating in ("subspace", "both")

    @property
    def keeps_bases(self) -> bool:
        """Whether input bases are kept: for subspace gating, or to isolate new units."""
        return self.uses_subspace or self.isolate_growth

    def _rows(self, model) -> dict[str, torch.Tensor] | None:
        """The output rows the subspace protection covers (None: all rows of all layers)."""
        layers = {n: m for n, m in model.named_modules() if n in self.subspace.bases}
        if self.uses_subspace:
            rows = self._head_rows(layers)
            return self._born_before(layers, rows) if self.free_new_units else rows
        # masks protect the old rows; the subspace keeps only the grown units silent
        return {n: _rows_from(layers[n], start) for n, start in self._grown_from.items()
                if n in layers}

    def _head_rows(self, layers) -> dict[str, torch.Tensor] | None:
        """Every row of every layer, less the output rows the ``head`` policy leaves free."""
        policy = self.head
        if policy == "auto":
            policy = "none" if self._class_incremental else "seen"
        if self._output_layer not in layers or policy == "all":
            return None
        rows = {n: torch.ones(m.weight.shape[0], dtype=torch.bool, device=m.weight.device)
                for n, m in layers.items()}
        head = layers[self._output_layer].weight
        rows[self._output_layer] = (seen_rows(head.shape[0], self._seen, device=head.device)
                                    if policy == "seen" else
                                    torch.zeros(head.shape[0], dtype=torch.bool,
                                                device=head.device))
        return rows

    def _born_before(self, layers, rows) -> dict[str, torch.Tensor]:
        """``rows`` (None: all) less the units grown during the current experience."""
        out = {}
        for name, module in layers.items():
            keep = (torch.ones(module.weight.shape[0], dtype=torch.bool,
                               device=module.weight.device) if rows is None else rows.get(name))
            if keep is None:
                continue
            start = self._experience_widths.get(name, keep.shape[0])
            if start < keep.shape[0]:
                keep = keep.clone()
                keep[start:] = False
            out[name] = keep
        return out

    def _rows_key(self, model) -> tuple:
        """What :meth:`_rows` depends on, read on the host without touching tensor values."""
        return (tuple((n, m.weight.shape[0]) for n, m in model.named_modules()
                      if n in self.subspace.bases),
                self._class_incremental, tuple(sorted(self._seen)), self._output_layer,
                tuple(sorted(self._experience_widths.items())),
                tuple(sorted(self._grown_from.items())))

    def _protected_rows(self, model) -> dict[str, torch.Tensor | None] | None:
        """:meth:`_rows` settled on the host (:func:`settled_rows`), kept until the rows can
        change (an experience starts or ends, the model grows, a checkpoint is loaded), so
        that the per-step projection never waits for the device."""
        if self._protected is False:
            self._protected = settled_rows(self._rows(model))
        return self._protected

    def _project(self, strategy, grown: dict[str, int] | None = None) -> None:
        """Restore the protected rows; with ``grown`` ({layer: its width before growth}) only
        the rows growth added: :meth:`prepare_growth` has just made the old ones exact, and
        growth leaves them and their response on old inputs unchanged (a wide layer's full
        projection costs a few training steps)."""
        rows = self._protected_rows(strategy.model)
        if grown is not None:
            rows = settled_rows(self._new_rows(strategy.model, rows, grown))
        if rows is None or rows:
            self.subspace.project_(strategy.model, strategy.optimizer, rows=rows)

    def _new_rows(self, model, rows, grown: dict[str, int]) -> dict[str, torch.Tensor]:
        """The rows of ``rows`` (None: all) that growth added to each layer of ``grown``."""
        out = {}
        for name, width in grown.items():
            if name not in self.subspace.bases or (rows is not None and name not in rows):
                continue
            new = _rows_from(model.get_submodule(name), width)
            out[name] = new if rows is None or rows[name] is None else new & rows[name]
        return out

    @staticmethod
    def _params(strategy) -> dict[str, torch.Tensor]:
        return dict(strategy.model.named_parameters())

    # -- growth protocol (used by GrowthPlugin / SparseGrowPlugin) -----------------------------
    def prepare_growth(self, strategy) -> None:
        """Make the protected state exact right before the model grows."""
        if self.keeps_bases:
            self._project(strategy)
        self.locks.restore_(self._params(strategy))
        self.batchnorm.restore_(strategy.model)
        self._widths = {n: p.shape[0] for n, p in self._params(strategy).items()
                        if n.endswith(".weight")}

    def growth_bases(self, layers) -> dict[str, torch.Tensor]:
        """Bases of the old inputs of ``layers``, for initialising new units in their
        orthogonal complement (empty when no bases are kept, and for free new units, which
        may start anywhere)."""
        if not self.keeps_bases or self.free_new_units:
            return {}
        return {n: b for n in layers if (b := self.subspace.input_basis(n)) is not None}

    def adopt_growth(self, strategy, pins: dict[str, torch.Tensor]) -> None:
        """Follow grown parameters and keep the entries ``pins`` marks at zero."""
        params = self._params(strategy)
        grown = {name[: -len(".weight")]: width for name, width in self._widths.items()
                 if name in params and params[name].shape[0] > width}
        self._protected = False   # the protected layers grew rows
        self.locks.sync(params)
        self.subspace.sync(strategy.model)
        for name, zero in pins.items():
            self.locks.pin_zero(name, params[name], zero)
        if self.isolate_growth and grown:
            # the new units' target on old inputs is silence, not whatever the (sparsified)
            # initialisation left there; their outgoing weights are still zero, so projecting
            # their incoming weights now keeps the function unchanged
            for layer, width in grown.items():
                self._grown_from.setdefault(layer, width)
                if layer in self.subspace.anchors:
                    self.subspace.anchors[layer][width:] = 0
            self._project(strategy, grown)
            self.locks.restore_(params)
            if self.quiet_margin > 0:
                self._quiet(strategy, grown)
        self._protected_rows(strategy.model)   # settled during the growth event

    @full_precision()   # response statistics in float32 under any autocast
    @torch.no_grad()
    def _quiet(self, strategy, grown: dict[str, int]) -> None:
        """Turn the units growth just added to respond positively to the recent inputs and
        lower their thresholds (:func:`quiet_offsets`); their outgoing weights are still zero,
        so the function does not change. The new rows are re-anchored, so the projection keeps
        the lowered threshold on old inputs."""
        model = strategy.model
        layers = {n: model.get_submodule(n) for n in grown}
        layers = {n: m for n, m in layers.items() if m.bias is not None}
        responses: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

        def record(module, args, out, name):
            new = out[..., grown[name]:] if isinstance(module, torch.nn.Linear) \
                else out[:, grown[name]:].transpose(0, 1).flatten(1).T
            responses[name].append(new.reshape(-1, new.shape[-1]))

        hooks = [m.register_forward_hook(lambda mod, a, o, n=n: record(mod, a, o, n))
                 for n, m in layers.items()]
        eval_passes(model, [x for x, _ in self._batches.get()] or [strategy.mb_x], hooks)
        for name, module in layers.items():
            start = grown[name]
            sign, offset = quiet_offsets(torch.cat(responses[name]), self.quiet_margin)
            module.weight[start:] *= sign.view(-1, *[1] * (module.weight.dim() - 1))
            module.bias[start:] = module.bias[start:] * sign + offset
            self.subspace.anchor_rows(model, name, start)

    def set_growable(self, layers) -> None:
        """Give ``layers`` (consumers of expandable pairs) the ``growable_energy``; layers that
        the ``subspace_energy`` option names keep their own value."""
        if self.growable_energy is None:
            return
        energy = self.subspace.energy
        energy = dict(energy) if isinstance(energy, dict) else {"default": energy}
        for name in layers:
            energy.setdefault(name, self.growable_energy)
        self.subspace.energy = energy

    def frozen_fraction(self) -> dict[str, float]:
        return self.locks.frozen_fraction()

    def subspace_dims(self) -> dict[str, int]:
        """Protected input directions per layer (empty without subspace gating)."""
        return self.subspace.sizes()

    # -- callbacks -------------------------------------------------------------------------
    def _place(self, model) -> None:
        """Keep the state on the model's device (a checkpoint loaded onto the CPU, a model
        moved since the last experience)."""
        device = model_device(model)
        self.locks.to(device)
        self.subspace.to(device)
        self.batchnorm.to(device)

    def before_training(self, strategy, **kwargs):
        refuse_distributed(strategy, "FreezingPlugin", "its masks, bases and restores act on "
                           "one process's parameters, from that process's batches")
        check_strategy(strategy)
        self.divergence.before_training(strategy)

    def before_training_exp(self, strategy, **kwargs):
        self._place(strategy.model)
        self.divergence.before_training_exp(strategy)
        self._span.enter(strategy.experience)
        if self._stream is None:
            self._stream = "class" if is_class_incremental(strategy.experience) else "domain"
            if self._stream == "class":
                self._class_incremental = True
                if not self._given["subspace_energy"]:
                    self.subspace.energy = STREAM_DEFAULTS["class"]["subspace_energy"]
                if not self._given["project_every"]:
                    self.project_every = STREAM_DEFAULTS["class"]["project_every"]
        classes = getattr(strategy.experience, "classes_in_this_experience", None) or ()
        if self._seen and any(int(c) not in self._seen for c in classes):
            self._class_incremental = True
        self._follow_model(strategy.model)
        self.locks.sync(self._params(strategy))
        self.subspace.sync(strategy.model)
        self.batchnorm.start(strategy.model)
        if self._span.starts:
            self._batches.clear()
            self._steps_at_start = self._steps
            self._experience_widths = {n: m.weight.shape[0]
                                       for n, m in strategy.model.named_modules()
                                       if n in self.subspace.bases}
        key = self._rows_key(strategy.model)
        if key != self._protected_key:   # on online streams this runs every mini-experience
            self._protected, self._protected_key = False, key
        self._protected_rows(strategy.model)   # settled now, not at the first step

    def _follow_model(self, model) -> None:
        """Keep what can follow a replaced or reshaped model, drop the rest (the rules are in
        :mod:`sparsegrow.plugins.replaced`)."""
        if self._model.replaced(model):
            self.locks = ParamLocks()
            for table in (self.subspace.bases, self.subspace.anchors, self.subspace._dims):
                table.clear()
            self.batchnorm.saved = {}
            self._grown_from, self._widths, self._output_layer = {}, {}, None
        else:
            drop_unfollowable_locks(self.locks, dict(model.named_parameters()))
            drop_unfollowable_bases(self.subspace, model)

    def after_backward(self, strategy, **kwargs):
        self.divergence.after_backward(strategy)

    def before_update(self, strategy, **kwargs):
        if self.locks.active or self.gate_topk < 1.0:
            with timed(self.timings, "gating", strategy.device, pending=self._pending):
                self.locks.gate_(self._params(strategy), self.gate_topk)

    def after_update(self, strategy, **kwargs):
        self._steps += 1
        project = self.keeps_bases and self._steps % self.project_every == 0
        if project or self.locks.active:
            with timed(self.timings, "gating", strategy.device, pending=self._pending):
                if project:
                    self._project(strategy)
                self.locks.restore_(self._params(strategy))
        if self.batchnorm.saved:
            with timed(self.timings, "gating", strategy.device, pending=self._pending):
                self.batchnorm.restore_(strategy.model)

    def after_training_iteration(self, strategy, **kwargs):
        self._batches.add(strategy)

    def after_training_exp(self, strategy, **kwargs):
        self.divergence.after_training_exp(strategy)
        if not self._span.ends:   # online: protection is updated at the real experience's end
            return
        settle(self.timings, self._pending)   # one wait per real experience, not per mini one
        if self._steps == self._steps_at_start:   # nothing was protected, nothing to measure
            warn_bypassed(self, strategy, "protection")
            return
        with timed(self.timings, "gating", strategy.device):
            self.prepare_growth(strategy)
        with timed(self.timings, "importance", strategy.device):
            batches = self._batches.get()
            if self.uses_masks and self.freeze_ratio > 0:
                params = self._params(strategy)
                self.locks.sync(params)
                scores = importance_scores(strategy.model, batches, strategy._criterion,
                                           kind=self.importance)
                self.locks.freeze(params, scores, self.freeze_ratio)
            if self.keeps_bases and batches:
                inputs = [x for x, _ in batches]
                self.subspace.update(strategy.model, inputs)
                self._output_layer = output_layer(strategy.model, inputs[-1])
                self._seen.update(int(c) for _, y in batches for c in torch.unique(y))
                self._seen.update(getattr(strategy.experience, "classes_in_this_experience", ()))
            if self.uses_subspace and not self.uses_masks and self.freeze_ratio > 0:
                self._freeze_uncovered(strategy, batches)
        self.batchnorm.end_experience(strategy.model)
        self._batches.clear()
        self._protected = False   # new bases, classes seen

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
                "timings": dict(self.timings),
                "batchnorm": self.batchnorm.state_dict(), "steps": self._steps,
                "grown_from": dict(self._grown_from), "seen": sorted(self._seen),
                "output_layer": self._output_layer, "class_incremental": self._class_incremental,
                "stream": self._stream, "project_every": self.project_every}

    def load_state_dict(self, state: dict) -> None:
        self.locks.load_state_dict(state["locks"])
        self.subspace.load_state_dict(state["subspace"])
        self.timings = dict(state["timings"])
        self._steps = state["steps"]
        # keys added after the first release: a checkpoint written before them resumes with
        # what that version did (no BatchNorm state, no grown rows known, the stream unread)
        if "batchnorm" in state:
            self.batchnorm.load_state_dict(state["batchnorm"])
        self._grown_from = dict(state.get("grown_from", {}))
        self._seen = set(state.get("seen", ()))
        self._output_layer = state.get("output_layer")
        self._class_incremental = state.get("class_incremental", False)
        self._stream = state.get("stream")
        self.project_every = state.get("project_every", self.project_every)
        self._protected = False
