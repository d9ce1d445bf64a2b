"""GrowthPlugin: run a growth operation of the engine on a schedule inside every experience.

Growth happens once per experience after the first, at training iteration
``round(grow_at · len(dataloader) · train_epochs)`` of that experience (``grow_at=0``: before
the first step), on the last ``batches`` training minibatches; if the strategy stops
earlier (CoPE), at the experience's end. On an online stream the experience is the original one
and growth happens at the start of the sub-experience ``grow_at`` falls in
(:mod:`sparsegrow.plugins.online`). The engine keeps the same optimizer object with padded
state; this plugin also keeps Avalanche's own record of optimized parameters
(``strategy.optimized_param_id``) pointing at the grown Parameters, otherwise the next
``make_optimizer()`` would take them for new parameters, reset their state and add them to the
optimizer a second time.

Listeners (objects with ``on_growth_start(strategy)`` / ``on_growth_end(strategy, event)``, e.g.
:class:`sparsegrow.plugins.gift.GIFtMetric`) are found among the strategy's plugins and the
evaluator's metrics. A *protection* (an object with ``prepare_growth``, ``growth_bases`` and
``adopt_growth``, i.e. a :class:`FreezingPlugin`) is found among the plugins, or set by
:class:`SparseGrowPlugin`; it is made exact before growth, provides bases for initialising new
units away from old inputs, and follows the grown parameters.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.divergence import DivergenceGuard
from sparsegrow.errors import ConfigError
from sparsegrow.growth import INITIALIZERS, Grower, count_parameters
from sparsegrow.growth.birth_gate import BirthGate, sample_inputs
from sparsegrow.growth.blocks import block_rows, block_zeros, init_blocks
from sparsegrow.growth.budget import added_parameters, event_allowance, fit_budget, resolve_budget
from sparsegrow.growth.optimizer_state import held_parameters
from sparsegrow.plugins.common import (RecentBatches, choice, fraction, model_device,
                                       refuse_distributed, timed)
from sparsegrow.plugins.compat import (check_strategy, follow_growth,
                                       refresh_iteration_references, warn_bypassed)
from sparsegrow.plugins.online import ExperienceSpan, real_experience
from sparsegrow.plugins.options import GrowthOptions
from sparsegrow.plugins.replaced import ModelWatch, drop_unfollowable_locks
from sparsegrow.protection.classes import is_class_incremental
from sparsegrow.protection.masks import ParamLocks
from sparsegrow.protection.room import units_for_room

_log = logging.getLogger(__name__)

OPS = {"widen": INITIALIZERS, "deepen": ("random", "identity"), "branch": ("random",)}
_BASIS_INITS = ("random", "zero_out", "on_data")


class GrowthPlugin(SupervisedPlugin, supports_distributed=False):
    """Grow the model inside every experience after the first.

    ``supports_distributed`` is False: growth replaces parameters of the local model and its
    optimizer; DDP's wrapper and the other replicas would not follow.

    Its keywords mean what the fields of the same names of
    :class:`~sparsegrow.plugins.options.GrowthOptions` mean, with the same defaults, except
    ``grow_at`` (0.75: there is no mask gating to move it) and ``init_density`` (1, dense:
    alone, this plugin keeps the sparse init's zeros by its own pins, without a protection
    whose projection they would serve).

    :param op: ``widen`` (append units to expandable layers), ``deepen`` (insert a hidden layer
        after a layer) or ``branch`` (add a parallel summed branch to a layer).
    :param init: initialiser; widen: ``random``, ``zero_out``, ``net2wider``, ``on_data``;
        deepen: ``random``, ``identity``; branch: ``random``.
    :param grow_at: fraction of the experience's training iterations after which to grow.
    :param units: units added per layer and event (widen); ``None`` = data-driven, the number
        of singular values of the cross-covariance M that reach ``energy`` of its spectrum.
    :param energy: spectrum energy for the data-driven size.
    :param max_ratio: data-driven size at most this fraction of the layer's current width.
    :param min_units: data-driven size at least this many units.
    :param conv_multiple: data-driven growth of a Conv2d producer keeps its width a multiple of
        this many channels (rounded to the nearest; requests under half a block add nothing),
        because convolution kernels compute whole blocks of channels anyway; a layer whose
        per-event cap is below one block grows by the exact count. 1 = no alignment.
    :param init_density: fraction of each new unit's incoming weights kept non-zero; the others
        are kept at zero during training.
    :param layers: ``"auto"`` or a list of layer names. ``auto``: for widen every expandable
        producer; for deepen/branch the last expandable producer (one new layer per event);
        chosen at the first growth event and kept.
    :param min_free: with subspace protection, also grow each producer enough that its
        consumer keeps at least this fraction of its input dimensions unprotected (0 = off):
        growth then appears where protection has used up the room (:mod:`..protection.room`).
    :param birth_gate: at evaluation, judge each input's experience by the nearest mean input of
        the experiences trained so far and silence the units grown after it
        (:mod:`sparsegrow.growth.birth_gate`; no task label is used). ``"auto"``: on every
        stream that is not class-incremental (where the classes differ between experiences
        the judge confuses them and silences the units that learned an input).
    :param budget: the most parameters the model may reach by growth (widen): an int is a
        count, a float a multiple of the model's size at the first experience; ``None``: no
        limit. Each event may add the budget left spread evenly over the experiences left
        (:mod:`sparsegrow.growth.budget`); the units the data asks for are scaled down to fit.
    :param lateral: widen densely: new units read every unit of the layer below and are read by
        every unit above. ``False``: each event's units form a block
        (:mod:`sparsegrow.growth.blocks`) that reads only the block grown below it and that only
        the output layer reads; its entries outside that pattern stay zero and are not counted
        as parameters (by the budget either), the birth gate keeps each input to one block, in
        training too, and a block's rows are locked once its experience ends.
    :param batches: number of last training minibatches used by data-driven growth.
    :param seed: seed of the random parts of initialisation (the global RNG is not used).
    """

    grows_model = True

    def __init__(self, *, op: Literal["widen", "deepen", "branch"] = "widen",
                 init: str = GrowthOptions.init, grow_at: float = 0.75,
                 units: int | None = None, energy: float = GrowthOptions.energy,
                 max_ratio: float = GrowthOptions.max_ratio,
                 min_units: int = GrowthOptions.min_units,
                 conv_multiple: int = GrowthOptions.conv_multiple, init_density: float = 1.0,
                 layers: str | list[str] = "auto", min_free: float = GrowthOptions.min_free,
                 birth_gate: bool | Literal["auto"] = False, budget: int | float | None = None,
                 lateral: bool = GrowthOptions.lateral, batches: int = GrowthOptions.batches,
                 seed: int = 0):
        super().__init__()
        choice("op", op, tuple(OPS))
        choice(f"init for op '{op}'", init, OPS[op])
        if units is not None and (not isinstance(units, int) or units < 1):
            raise ConfigError(f"units must be a positive integer or null (data-driven), "
                              f"got {units!r}")
        if units is None and op == "widen" and init == "net2wider":
            raise ConfigError("init net2wider needs a fixed number of units (set units)")
        if init == "net2wider" and init_density < 1:
            # copies are exact: a sparsified copy would no longer split the function evenly
            raise ConfigError(f"init net2wider copies units exactly: init_density must be 1, "
                              f"got {init_density!r}")
        if layers != "auto" and not (isinstance(layers, (list, tuple))
                                     and all(isinstance(n, str) for n in layers)):
            raise ConfigError(f"layers must be 'auto' or a list of layer names, got {layers!r}")
        if not isinstance(min_units, int) or min_units < 0 or float(max_ratio) < 0:
            raise ConfigError(f"min_units must be an integer ≥ 0 and max_ratio ≥ 0, got "
                              f"{min_units!r}, {max_ratio!r}")
        if not isinstance(conv_multiple, int) or conv_multiple < 1:
            raise ConfigError(f"conv_multiple must be a positive integer, got {conv_multiple!r}")
        self.op, self.init, self.units = op, init, units
        self.conv_multiple = conv_multiple
        self.grow_at = fraction("grow_at", grow_at)
        self.energy = fraction("energy", energy)
        self.max_ratio, self.min_units = float(max_ratio), min_units
        self.init_density = fraction("init_density", init_density, low_open=True)
        self.min_free = fraction("min_free", min_free)
        if self.min_free >= 1.0:
            raise ConfigError(f"min_free must be below 1 (a fully free input cannot be kept "
                              f"by growth), got {min_free!r}")
        self.layers = layers if layers == "auto" else list(layers)
        if budget is not None:
            resolve_budget(budget, 1)   # its checks, before any data
        self.budget = budget
        if not isinstance(lateral, bool):
            raise ConfigError(f"lateral must be true or false, got {lateral!r}")
        if not lateral and op != "widen":
            raise ConfigError(f"lateral: false grows blocks of units, which only op widen adds "
                              f"(op is {op!r})")
        if not lateral and units is None:
            # the gate keeps the measuring pass to the block being learned, absent before growth
            raise ConfigError("lateral: false grows blocks of a fixed size: set units (the "
                              "data-driven size would be measured where no block is yet)")
        self.lateral = lateral
        self.seed = seed
        self.protection = None          # set by SparseGrowPlugin, or found in before_training
        self.history: list[dict] = []   # one entry per growth event
        self.timings: dict[str, float] = {"growth": 0.0}
        self._batches = RecentBatches(batches)
        self._pins = ParamLocks()       # sparse-init zeros when no protection keeps them
        self._listeners: list = []
        self._grower: Grower | None = None
        self._experiences = 0           # experiences fully trained so far
        self._iteration = 0
        self._grow_iteration = -1
        self._auto_layers: list[str] | None = None
        self._initial_params: int | None = None   # the model's size when training began
        self._initial_widths: dict[str, int] | None = None   # grown layers' widths, blocks only
        if birth_gate not in (True, False, "auto"):
            raise ConfigError(f"birth_gate must be true, false or 'auto', got {birth_gate!r}")
        self.gate = BirthGate(blocks=not lateral) if birth_gate else None
        self._gate_auto = birth_gate == "auto"   # decided at the first experience
        self.divergence = DivergenceGuard()   # growth measures spectra: never on non-finite data
        self._model = ModelWatch()
        self._span = ExperienceSpan()   # online streams: the real experience
        self._late_said = False
        self._frozen_said: set[str] = set()   # frozen layers already reported (not grown)

    # -- helpers ---------------------------------------------------------------------------
    def _grower_for(self, strategy) -> Grower:
        if self._grower is None or self._grower.model is not strategy.model:
            self._grower = Grower(strategy.model, optimizer=strategy.optimizer)
        self._grower.optimizer = strategy.optimizer
        # a few samples of a recent training batch (not strategy.mb_x: a periodic evaluation
        # replaces it): the analysis exports the model on them when torch.fx cannot trace its
        # forward (e.g. x.view(len(x), -1))
        batches = self._batches.get()
        self._grower.example = batches[-1][0][:2] if batches else None
        return self._grower

    def _target_layers(self, grower: Grower) -> list[str]:
        if self.layers != "auto":
            return list(self.layers)
        if self._auto_layers is None:  # chosen once: a branch makes its layer non-expandable
            self._auto_layers = self._auto_choice(grower)
        return list(self._auto_layers)

    def _auto_choice(self, grower: Grower) -> list[str]:
        producers = [p.producer for p in grower.pairs]
        if not producers:
            rejected = "; ".join(f"{n}: {why}" for n, why in grower.report.rejected.items())
            raise ConfigError(f"the model has no layer that {self.op} can grow ({rejected})")
        return producers if self.op == "widen" else producers[-1:]

    @staticmethod
    def _sync_avalanche_bookkeeping(strategy) -> None:
        """Point ``strategy.optimized_param_id`` at the current Parameters the optimizer holds."""
        ids = getattr(strategy, "optimized_param_id", None)
        if ids is not None and strategy.optimizer is not None:
            ids.update(held_parameters(strategy.model, strategy.optimizer))

    # -- the growth event ------------------------------------------------------------------
    def grow(self, strategy) -> dict:
        """Grow now, on the recent minibatches; returns the event record."""
        self.divergence.check(strategy)
        if self.protection is not None:
            # the protection's own pending restore is not growth: do it before measuring GIFt
            with timed(self.timings, "growth", strategy.device):
                self.protection.prepare_growth(strategy)
        for listener in self._listeners:
            listener.on_growth_start(strategy)
        with timed(self.timings, "growth", strategy.device):
            grower = self._grower_for(strategy)
            batches = self._batches.get()
            targets = self._target_layers(grower)
            if not self.lateral and self._initial_widths is None:
                widths = grower.widths()
                self._initial_widths = {name: widths[name] for name in targets}
            names = self._unfrozen(grower, targets)
            before = count_parameters(strategy.model)
            first = len(grower.history)
            generator = torch.Generator().manual_seed(self.seed + len(self.history))
            pins = {}
            if self.op == "widen":
                pins = self._widen(strategy, grower, names, batches, generator)
            else:
                for name in names:
                    if self.op == "deepen":
                        grower.deepen(name, init=self.init, generator=generator)
                    else:
                        grower.branch(name, generator=generator)
            self._sync_avalanche_bookkeeping(strategy)
            follow_growth(strategy.plugins, strategy.model)
            if self.protection is not None:
                self.protection.adopt_growth(strategy, pins)
            else:
                params = dict(strategy.model.named_parameters())
                self._pins.sync(params)
                for name, zero in pins.items():
                    self._pins.pin_zero(name, params[name], zero)
            event = {"experience": self._experiences,
                     "iteration": int(strategy.clock.train_iterations),
                     "op": self.op, "init": self.init, "operations": grower.history[first:],
                     "params_before": before, "params_after": count_parameters(strategy.model),
                     "params_in_use": self.parameters_in_use(strategy.model),
                     "widths": grower.widths()}
            if self.protection is not None:
                event["frozen_fraction"] = self.protection.frozen_fraction()
                event["subspace_dims"] = self.protection.subspace_dims()
            self.history.append(event)
        for listener in self._listeners:
            listener.on_growth_end(strategy, event)
        return event

    def _unfrozen(self, grower, names: list[str]) -> list[str]:
        """``names`` without the producers that the user (or the strategy, e.g. CWR*) froze:
        grown tensors keep ``requires_grad``, so units grown there, or read by a frozen
        consumer, would never learn. Said once per layer; such a layer grows again once it is
        trainable."""
        if self.op != "widen":
            return names
        model, out = grower.model, []
        for name in names:
            pair = grower.pair(name)
            frozen = [m for m in (pair.producer, pair.consumer)
                      if not model.get_submodule(m).weight.requires_grad]
            if not frozen:
                out.append(name)
            elif name not in self._frozen_said:
                self._frozen_said.add(name)
                which = " and ".join(repr(m) for m in frozen)
                _log.warning("not growing %r while %s %s frozen (requires_grad is False): its "
                             "new units could never learn", name, which,
                             "is" if len(frozen) == 1 else "are")
        return out

    def _widen(self, strategy, grower, names, batches, generator) -> dict[str, torch.Tensor]:
        spectra = None
        if self.units is None:
            spectra = grower.spectrum(batches, strategy._criterion, layers=names)
            sizes = grower.growth_sizes(spectra, energy=self.energy, min_units=self.min_units,
                                        max_ratio=self.max_ratio,
                                        conv_multiple=self.conv_multiple)
        else:
            sizes = {name: self.units for name in names}
        if self.min_free > 0 and self.protection is not None:
            for name, units in self._room_sizes(grower, names).items():
                sizes[name] = max(sizes[name], units)
        if self.budget is not None:
            sizes = self._within_budget(strategy, grower, sizes)
        bases = None
        if self.protection is not None and self.init in _BASIS_INITS:
            bases = self.protection.growth_bases(names) or None
        before = {name: width for name, width in grower.widths().items() if sizes.get(name)}
        masks = grower.widen_many(sizes, init=self.init, batches=batches,
                                  loss_fn=strategy._criterion, init_density=self.init_density,
                                  generator=generator, spectra_by_layer=spectra, bases=bases)
        # masks have the producer's final shape (True where an entry may be non-zero)
        zeros = {} if self.init_density >= 1.0 else \
            {f"{producer}.weight": ~mask for producer, mask in masks.items()}
        if not self.lateral:
            pairs = grower.pairs
            init_blocks(strategy.model, pairs, before, generator)
            params = dict(strategy.model.named_parameters())
            for name, zero in block_zeros(strategy.model, pairs, before,
                                          self._initial_widths).items():
                with torch.no_grad():
                    params[name].masked_fill_(zero, 0.0)
                zeros[name] = zeros[name] | zero if name in zeros else zero
        return zeros

    def _locks(self) -> ParamLocks:
        """Where growth's pins and locked blocks are kept: the protection's locks, or its own."""
        return self.protection.locks if self.protection is not None else self._pins

    @property
    def zeros(self) -> int:
        """Entries growth keeps at exactly zero (sparse init, blocks): not parameters."""
        return sum(int(pinned.sum()) for pinned in self._locks().pinned.values())

    def parameters_in_use(self, model) -> int:
        """The model's parameters less :attr:`zeros`: what the budget counts."""
        return count_parameters(model) - self.zeros

    def _within_budget(self, strategy, grower, sizes: dict[str, int]) -> dict[str, int]:
        """``sizes`` scaled down so this event adds at most its share of the budget left."""
        model, pairs = strategy.model, grower.pairs
        params = self.parameters_in_use(model)
        budget = resolve_budget(self.budget, self._initial_params or params)
        experience = real_experience(strategy.experience)
        try:
            events_left = len(experience.origin_stream) - experience.current_experience
        except (AttributeError, TypeError):   # a stream of unknown length (lazy generator)
            events_left = None
        allowance = event_allowance(budget=budget, params=params, events_left=events_left)
        blocks = None if self.lateral else self._initial_widths
        return fit_budget(sizes, lambda s: added_parameters(model, pairs, s, blocks=blocks),
                          allowance)

    def _room_sizes(self, grower, names) -> dict[str, int]:
        """Units per producer that give its consumer ``min_free`` of free input room."""
        protected = self.protection.subspace_dims()
        sizes = {}
        for name in names:
            pair = grower.pair(name)
            consumer = grower.model.get_submodule(pair.consumer)
            per_unit = pair.spatial
            if isinstance(consumer, torch.nn.Conv2d):
                per_unit *= consumer.kernel_size[0] * consumer.kernel_size[1]
            sizes[name] = units_for_room(consumer.weight[0].numel(),
                                         protected.get(pair.consumer, 0), self.min_free,
                                         per_unit=per_unit)
        return sizes

    # -- callbacks -------------------------------------------------------------------------
    def _place(self, model) -> None:
        """Keep the state on the model's device (a checkpoint loaded onto the CPU, a model
        moved since the last experience)."""
        device = model_device(model)
        self._pins.to(device)
        if self.gate is not None:
            self.gate.to(device)

    def before_training(self, strategy, **kwargs):
        refuse_distributed(strategy, "GrowthPlugin", "growth replaces Parameters, which a "
                           "wrapper's replicas and DDP's gradient reducer would not follow")
        check_strategy(strategy)
        self.divergence.before_training(strategy)
        candidates = list(strategy.plugins) + list(getattr(strategy.evaluator, "metrics", []))
        self._listeners = [c for c in candidates
                           if callable(getattr(c, "on_growth_start", None))]
        if self.protection is None:
            from sparsegrow.plugins.freezing import FreezingPlugin
            self.protection = next((p for p in strategy.plugins
                                    if isinstance(p, FreezingPlugin)), None)

    def before_training_exp(self, strategy, **kwargs):
        self._place(strategy.model)
        self.divergence.before_training_exp(strategy)
        self._span.enter(strategy.experience)
        if self._gate_auto:
            self._decide_gate(strategy)
        if self.gate is not None:   # training sees every unit, except with blocks (its own)
            self.gate.detach()
            self._arm_for_training(strategy)
        if self._span.starts:
            self._batches.clear()
        self._iteration = 0
        if self._initial_params is None:
            self._initial_params = count_parameters(strategy.model)
        self._grow_iteration = self._growth_iteration(strategy)
        params = dict(strategy.model.named_parameters())
        if self._model.replaced(strategy.model):
            # a new model (GDumb): analysed afresh, nothing grown on the old one applies
            # (the rules are in :mod:`sparsegrow.plugins.replaced`)
            self._grower, self._pins, self._auto_layers = None, ParamLocks(), None
            self._initial_widths = None
            if self.gate is not None:
                self.gate = BirthGate(blocks=not self.lateral)
        else:
            drop_unfollowable_locks(self._pins, params)
        self._pins.sync(params)

    def _decide_gate(self, strategy) -> None:
        """The automatic gate: off for good on a class-incremental stream."""
        self._gate_auto = False
        if is_class_incremental(real_experience(strategy.experience)):
            self.gate = None
            _log.info("birth gate off: the stream is class-incremental, where judging an "
                      "input's experience by its nearest mean input confuses classes")

    def _growth_iteration(self, strategy) -> int:
        """The iteration of the current (sub-)experience at which to grow; -1: none."""
        span = self._span
        if self._experiences < 1:
            return -1
        if span.length > 1:   # online: the first iteration of the sub-experience grow_at is in
            grow_at = min(round(self.grow_at * span.length), span.length - 1)
            return 0 if span.index == grow_at else -1
        total = len(strategy.dataloader) * strategy.train_epochs
        return min(round(self.grow_at * total), total - 1)

    def before_training_iteration(self, strategy, **kwargs):
        self._batches.add(strategy)
        if self._iteration == self._grow_iteration:
            self.grow(strategy)
            refresh_iteration_references(strategy, self)
        self._iteration += 1

    def after_backward(self, strategy, **kwargs):
        self.divergence.after_backward(strategy)

    def before_update(self, strategy, **kwargs):
        if self._pins.active:
            self._pins.gate_(dict(strategy.model.named_parameters()))

    def after_update(self, strategy, **kwargs):
        if self._pins.active:
            self._pins.restore_(dict(strategy.model.named_parameters()))

    def after_training_exp(self, strategy, **kwargs):
        if self.gate is not None:   # the protection's passes see every unit
            self.gate.detach()
        self.divergence.after_training_exp(strategy)
        if self._iteration <= self._grow_iteration and not len(self._batches):
            warn_bypassed(self, strategy, "growth")
        elif self._iteration <= self._grow_iteration:
            # the strategy stopped before the iteration len(dataloader) · train_epochs put
            # growth at (CoPE, early stopping): grow now, so that every experience still grows
            if not self._late_said:
                _log.warning("experience %d trained %d iteration(s), fewer than its growth "
                             "iteration %d: growing at its end instead", self._experiences,
                             self._iteration, self._grow_iteration)
                self._late_said = True
            self.grow(strategy)
        if not self._span.ends:   # online: the real experience goes on
            return
        self._experiences += 1
        if self._initial_widths:
            self._lock_blocks(strategy)
        if self.gate is not None:
            grower = self._grower_for(strategy)
            experience = real_experience(strategy.experience)
            inputs = sample_inputs(experience.dataset, device=strategy.device,
                                   seed=self.seed + self._experiences)
            self.gate.record(inputs, grower.widths(), grower.pairs)
        self._batches.clear()

    def _lock_blocks(self, strategy) -> None:
        """Lock every block's rows (this experience's block is done learning)."""
        locks, params = self._locks(), dict(strategy.model.named_parameters())
        pairs = self._grower_for(strategy).pairs
        for name, rows in block_rows(strategy.model, pairs, self._initial_widths).items():
            locks.lock(name, params[name], rows)

    # The gate is armed while the strategy evaluates (with blocks, while it trains too): the
    # protection's end-of-experience passes and diagnostics run between, and see every unit.
    def before_eval(self, strategy, **kwargs):
        if self.gate is not None:
            self.gate.attach(strategy.model)

    def after_eval(self, strategy, **kwargs):
        if self.gate is not None:
            self.gate.detach()
            if strategy.is_training:   # a periodic evaluation inside an experience
                self._arm_for_training(strategy)

    def _arm_for_training(self, strategy) -> None:
        """With blocks, the experience in training sees the initial units and its own block."""
        if self.gate.blocks:
            self.gate.attach(strategy.model, training=len(self.gate.prototypes))

    # -- checkpoints -----------------------------------------------------------------------
    def __getstate__(self):
        # Avalanche's save_checkpoint pickles the strategy with its plugins: the growth engine
        # holds the optimizer (which save_checkpoint(exclude=["optimizer"]) must leave out) and
        # is rebuilt from the model at the next growth event
        state = dict(self.__dict__)
        state["_grower"] = None
        return state

    def state_dict(self) -> dict:
        return {"history": list(self.history), "timings": dict(self.timings),
                "experiences": self._experiences, "pins": self._pins.state_dict(),
                "initial_params": self._initial_params,
                "initial_widths": self._initial_widths,
                "auto_layers": self._auto_layers, "gate_auto": self._gate_auto,
                "gate": self.gate.state_dict() if self.gate is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state["history"])
        self.timings = dict(state["timings"])
        self._experiences = state["experiences"]
        self._initial_params = state.get("initial_params")
        self._initial_widths = state.get("initial_widths")   # absent from older checkpoints
        self._pins.load_state_dict(state["pins"])
        self._auto_layers = state["auto_layers"]
        self._gate_auto = state.get("gate_auto", False)
        if state["gate"] is None:   # never asked for, or an automatic gate decided off
            self.gate = None
        elif self.gate is not None:
            self.gate.load_state_dict(state["gate"])
        self._grower = None
