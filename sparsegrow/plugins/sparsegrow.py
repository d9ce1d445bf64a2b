"""SparseGrowPlugin: late-stage data-driven sparse growth + gradient-gated freezing (METHOD.md).

It is a composition: one :class:`GrowthPlugin` (widen, data-driven size, on-data sparse init)
and one :class:`FreezingPlugin` (importance masks and/or subspace protection), wired so that the
growth makes the protection exact first, initialises new units in the complement of the old
inputs' subspace (with subspace gating), and hands the grown parameters and the sparse-init
zeros to the protection. Either part can be switched off for ablations.
"""

from __future__ import annotations

from avalanche.core import SupervisedPlugin

from sparsegrow.errors import ConfigError
from sparsegrow.growth import Grower
from sparsegrow.plugins.freezing import FreezingPlugin
from sparsegrow.plugins.growth import GrowthPlugin
from sparsegrow.plugins.replaced import ModelWatch

_CALLBACKS = ("before_training", "before_training_exp", "before_training_iteration",
              "after_backward", "before_update", "after_update", "before_eval", "after_eval")


class SparseGrowPlugin(SupervisedPlugin, supports_distributed=False):
    """SparseGrow as one Avalanche plugin.

    ``supports_distributed`` is False for the reasons given on its two parts (local parameter
    replacement and local restore steps).

    Defaults were chosen on Permuted MNIST (10 × 1 epoch, MLP 2×400, SGD lr 0.01 m 0.9,
    validation split, `experiments/tuning/tune_sparsegrow_permuted_mnist_10.yaml`, ACC):
    ``gating="subspace"`` 90.66 (mask, with its own growth defaults below: 85.88; both: 83.41),
    ``subspace_energy=0.9`` 90.66 (0.85: 90.01, 0.95: 90.62, 0.97: 88.31; more energy trades LA
    for BWT), ``project_every=100`` (20: 90.67, the same for 5× the restores; 1000: 90.26; 1:
    90.13 at 2.3× the training time). Composed with ``LwFPlugin(alpha=0.5, temperature=2)``
    it forgets about half as much (92.30). On a class-incremental stream (detected at the first
    experience) the defaults become those that won the validation search with replay
    (`experiments/tuning/tune_split_mnist_5_replay.yaml`): hidden-layer energy 0.3, the head left free,
    restores every 10 steps (see :class:`FreezingPlugin`).

    Added to any Avalanche strategy it also stops training that diverged with one line
    (:mod:`sparsegrow.divergence`), follows a model the strategy replaces or reshapes (GDumb;
    :mod:`sparsegrow.plugins.replaced`), grows and protects once per real experience on online
    streams (:mod:`sparsegrow.plugins.online`), and refuses in one line the strategies growth
    cannot apply to (:mod:`sparsegrow.plugins.compat`; ``tests/plugins/test_strategy_compat.py``
    holds the outcome for every template Avalanche exports).

    :param grow_at: fraction of each experience's iterations after which to grow; ``None``:
        0.75 (late), or 0 (the experience's start) with ``gating="mask"``.
    :param energy: spectrum energy of M that sets the number of new units per layer.
    :param max_ratio: at most this fraction of a layer's width per growth event.
    :param min_units: at least this many units per layer and event.
    :param units: fixed units per layer and event instead of the data-driven size (None).
    :param conv_multiple: data-driven growth keeps Conv2d widths multiples of this many
        channels where a block fits in one event (see :class:`GrowthPlugin`); 1 = exact sizes.
    :param init: initialiser of new units (``on_data``, ``zero_out``, ``random``, ``net2wider``).
    :param init_density: fraction of each new unit's incoming weights kept (others stay zero);
        ``None``: 0.5, or 1 (dense) with ``gating="mask"`` or ``free_new_units``.
    :param importance: ``taylor``, ``fisher`` or ``magnitude``.
    :param freeze_ratio: fraction of free entries frozen per tensor at each experience's end.
    :param gate_topk: fraction of free entries with the largest |gradient| updated per step.
    :param gating: ``mask``, ``subspace`` or ``both``.
    :param subspace_energy: energy of each layer's input-subspace basis (subspace gating;
        ``None``: 0.9, or 0.3 on a class-incremental stream): a
        number, or {layer name: fraction} with an optional ``default``.
    :param project_every: optimizer steps between subspace restores (1 = exact projection;
        ``None``: 100, or 10 on a class-incremental stream).
    :param min_free: also grow each producer so that its consumer keeps at least this fraction
        of its input dimensions outside the protected subspace (0 = off; subspace gating).
    :param isolate_growth: keep new units' incoming weights orthogonal to the old inputs during
        training, in every gating mode (see :class:`FreezingPlugin`); ``None``: on, except with
        ``init="net2wider"``, whose copies of existing units cannot be orthogonal to old inputs.
    :param quiet_margin: lower new units' thresholds by this many standard deviations of
        their response on the current data, so they stay quiet on old inputs (needs
        ``isolate_growth``; 0 = off; see :class:`FreezingPlugin`).
    :param birth_gate: at evaluation, silence for each input the units grown after the
        experience whose mean input is nearest to it (see :class:`GrowthPlugin`).
    :param free_new_units: leave new units unprotected until the experience they were grown in
        ends, so that they learn it in every input direction (``isolate_growth`` then defaults
        to off; old inputs reach them unless ``birth_gate`` keeps them away; see
        :class:`FreezingPlugin`).
    :param head: subspace protection of the output layer: ``auto``, ``all``, ``seen`` or
        ``none`` (see :class:`FreezingPlugin`).
    :param batchnorm: BatchNorm treatment under protection: ``free``, ``freeze`` or
        ``cumulative`` (see :mod:`sparsegrow.protection.batchnorm`).
    :param growable_energy: subspace energy of the layers growth can give input room back to
        (consumers of expandable pairs); ``None``: as ``subspace_energy``.
    :param layers: ``"auto"`` (every expandable layer) or a list of producer names.
    :param budget: the most parameters growth may bring the model to: an int is a count, a
        float a multiple of the model's size at the first experience; ``None``: no limit (see
        :class:`GrowthPlugin`).
    :param growth: switch growth on/off.
    :param freezing: switch the protection (masks/subspace) on/off.
    :param batches: number of last training minibatches used by growth and importance passes.
    :param seed: seed of the random parts of initialisation.
    """

    grows_model = protects_model = True

    def __init__(self, *, grow_at: float | None = None, energy: float = 0.9,
                 max_ratio: float = 0.25, min_units: int = 0, units: int | None = None,
                 conv_multiple: int = 8, init: str = "on_data",
                 init_density: float | None = None, importance: str = "taylor",
                 freeze_ratio: float = 0.3, gate_topk: float = 1.0, gating: str = "subspace",
                 subspace_energy: float | dict | None = None, project_every: int | None = None,
                 min_free: float = 0.0, isolate_growth: bool | None = None,
                 quiet_margin: float = 0.0, birth_gate: bool = False,
                 free_new_units: bool = False,
                 head: str = "auto", growable_energy: float | None = None, layers="auto",
                 budget: int | float | None = None,
                 growth: bool = True, freezing: bool = True, batches: int = 4, seed: int = 0,
                 batchnorm: str = "free"):
        super().__init__()
        # Under masks the paper's late, sparse growth lost to early, dense growth on the
        # validation split (tune_gift_masks_permuted_mnist_10, RESULTS.md table 7a); under
        # subspace gating these knobs changed little or cost accuracy (tables 5, 7a).
        masks_only = gating == "mask"
        if grow_at is None:
            grow_at = 0.0 if masks_only else 0.75
        if init_density is None:
            # free new units are protected from their next experience on, and the sparse init's
            # static zeros would fight that projection (the two alternate)
            init_density = 1.0 if masks_only or free_new_units else 0.5
        if isolate_growth is None:   # copies of existing units cannot be orthogonal to old inputs
            isolate_growth = init != "net2wider" and not free_new_units
        if not (growth or freezing):
            raise ConfigError("SparseGrowPlugin with growth: false and freezing: false does "
                              "nothing; switch one of them on or remove the plugin")
        self.growth = GrowthPlugin(op="widen", init=init, grow_at=grow_at, units=units,
                                   energy=energy, max_ratio=max_ratio, min_units=min_units,
                                   conv_multiple=conv_multiple, init_density=init_density,
                                   layers=layers, min_free=min_free, birth_gate=birth_gate,
                                   budget=budget,
                                   growth_batches=batches, seed=seed) if growth else None
        self.freezing = FreezingPlugin(importance=importance, freeze_ratio=freeze_ratio,
                                       gate_topk=gate_topk, gating=gating,
                                       energy=subspace_energy, project_every=project_every,
                                       importance_batches=batches,
                                       isolate_growth=isolate_growth and growth,
                                       quiet_margin=quiet_margin if growth else 0.0,
                                       free_new_units=free_new_units and growth,
                                       head=head, growable_energy=growable_energy,
                                       batchnorm=batchnorm,
                                       ) if freezing else None
        if growth and freezing and init == "net2wider" and gating != "mask":
            # subspace gating initialises new units in the complement of old inputs; a copy of
            # an existing unit cannot be there
            raise ConfigError(f"init net2wider copies existing units, which cannot be "
                              f"orthogonal to earlier inputs: use gating 'mask' with it, "
                              f"not {gating!r}")
        if growth and freezing and init == "net2wider" and isolate_growth:
            raise ConfigError("init net2wider copies existing units, which cannot be kept "
                              "orthogonal to earlier inputs: set isolate_growth: false with it")
        if self.growth is not None:
            self.growth.protection = self.freezing
        self.grows_model, self.protects_model = growth, freezing
        self._growable_known = False
        self._analysed = ModelWatch()   # a replaced model (GDumb) is analysed again
        self._example = None            # a recent input: strategy.mb_x is gone after an eval

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
