"""The expert options of :class:`~sparsegrow.plugins.sparsegrow.SparseGrowPlugin`, in two groups.

Every default of the plugin lives here: the field defaults of :class:`GrowthOptions` and
:class:`ProtectionOptions`, the rules of :func:`resolve` for the fields whose default depends on
another option (``None`` = automatic), and :data:`STREAM_DEFAULTS` for the protection settings
that follow the kind of stream, which is known only at the first experience.

A group is given as an instance, as a plain mapping of its fields (what a YAML file holds,
``growth: {units: 20, free_new_units: true}``), as ``True`` (its defaults) or ``False`` (that
part of the plugin off). What each option does and when to turn it is said on the field.
Options marked *experimental* were never varied by a committed run (``experiments/``): their
effect is unmeasured. How the defaults were chosen is in RESULTS.md (tables 2b, 3a, 5, 7a).
"""

from __future__ import annotations

import warnings
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any, Literal

from sparsegrow.errors import ConfigError

Init = Literal["on_data", "zero_out", "random", "net2wider"]
Gating = Literal["mask", "subspace", "both"]
Importance = Literal["taylor", "fisher", "magnitude"]
Gate = Literal[True, False, "auto"]
Head = Literal["auto", "all", "seen", "none"]
BatchNorm = Literal["free", "freeze", "cumulative"]

# Subspace defaults per kind of stream, chosen on validation splits (RESULTS.md tables 2b, 3a):
# a class-incremental stream needs room in the hidden layers for the new classes' features and
# restores often enough that the free head never trains against drift that a restore undoes.
STREAM_DEFAULTS = {"domain": {"subspace_energy": 0.9, "project_every": 100},
                   "class": {"subspace_energy": 0.3, "project_every": 10}}

# The default parameter budget, a multiple of the model's size at the first experience: room
# for a block of new units at every experience of the streams measured (unbudgeted, 20
# experiences of a 2×50 MLP end at 12×, RESULTS.md table 7) while the size levels off on
# longer streams.
BUDGET = 10.0

# Subspace energy of the layers growth gives input room back to, when growth is on and
# ProtectionOptions.growable_energy is automatic: strict, because new units supply the room
# (RESULTS.md tables 7a and 7c).
GROWABLE_ENERGY = 0.99


class IgnoredOptionWarning(UserWarning):
    """An option was given that the rest of the configuration makes do nothing."""


@dataclass(frozen=True, kw_only=True)
class GrowthOptions:
    """How and when the network grows, and how its new units are treated.

    :param grow_at: fraction of each experience's training iterations after which to grow
        (0: at its start). ``None``: 0 (the new units learn the whole experience) with
        ``free_new_units`` or ``gating="mask"``, else 0.75 (late, the paper's choice).
    :param units: new units per layer and growth event, a block that learns the experience it
        is grown in (within the budget, which scales it down); ``None``: data-driven, from
        ``energy``, ``max_ratio`` and ``min_units`` (which a fixed count ignores). On the
        validation split (RESULTS.md table 7b) the block won on Permuted MNIST 20 (89.52
        against 84.11) and Split MNIST with replay (86.65 against 84.20), tied on the narrow
        CNN (the budget binds) and lost on Rotated MNIST (74.64 against 76.35).
    :param energy: data-driven size: the number of singular values of the cross-covariance M
        that reach this fraction of its spectrum's energy. Higher grows more.
    :param max_ratio: data-driven size at most this fraction of the layer's width per event.
    :param min_units: data-driven size at least this many units per layer and event
        (*experimental*).
    :param conv_multiple: data-driven growth keeps Conv2d widths multiples of this many
        channels where a block fits in one event (1: exact sizes); see
        :class:`~sparsegrow.plugins.growth.GrowthPlugin`.
    :param init: initialiser of new units: ``on_data`` (from the data, in the complement of old
        inputs under subspace gating), ``zero_out``, ``random`` or ``net2wider`` (copies of
        existing units; needs ``units``, ``gating="mask"`` and ``isolate=False``).
    :param init_density: fraction of each new unit's incoming weights kept (the others stay
        zero). ``None``: 0.5, or 1 (dense) with ``gating="mask"`` or ``free_new_units``.
    :param min_free: also grow each producer so that its consumer keeps at least this fraction
        of its input dimensions outside the protected subspace (0: off; subspace gating).
        *Ablation only*: it never paid (0.1 and 0.2 against 0: 79.88 and 79.57 against 79.90
        on the validation split, RESULTS.md table 7a).
    :param birth_gate: at evaluation, silence for each input the units grown after the
        experience whose mean input is nearest to it (no task label is used). ``"auto"``: on
        every stream that is not class-incremental (:mod:`sparsegrow.growth.birth_gate`). Where
        experiences bring new classes the judge confuses them and silences the units that
        learned an input; on domain-incremental streams it pays even where it routes only
        about 60% of the inputs home (Rotated MNIST in 10° steps, RESULTS.md table 7c).
    :param free_new_units: leave new units unprotected until the experience they were grown in
        ends, so that they learn it in every input direction (old inputs reach them unless
        ``birth_gate`` keeps them away). ``None``: on under subspace gating, which it needs.
    :param isolate: keep new units' incoming weights orthogonal to the old inputs during
        training, in every gating mode. ``None``: on, except with ``init="net2wider"`` or
        ``free_new_units``, which it contradicts. *Ablation only* under subspace gating: with
        late growth it changed nothing measurable (78.51 without against 78.54 with it,
        RESULTS.md table 7).
    :param quiet_margin: lower new units' thresholds by this many standard deviations of their
        response on the current data, so they stay quiet on old inputs (needs ``isolate``;
        0: off; see :mod:`sparsegrow.protection.quiet`).
    :param lateral: new units read every unit of the layer below and every unit above reads
        them. ``False``: each event's units form a block, a column of their own that reads only
        the block grown below it and that only the output layer reads; its other entries stay
        zero and do not count as parameters, the birth gate sends each input to its nearest
        experience's block alone (in training, to the block being learned), and the block is
        locked once its experience ends (:mod:`sparsegrow.growth.blocks`). A block's cost then
        stays the same as the model grows, so a budget buys more units; each experience learns
        with its block's capacity alone.
    :param batches: number of last training minibatches the growth measures on.
    """

    grow_at: float | None = None
    units: int | None = 20
    energy: float = 0.9
    max_ratio: float = 0.25
    min_units: int = 0
    conv_multiple: int = 8
    init: Init = "on_data"
    init_density: float | None = None
    min_free: float = 0.0
    birth_gate: Gate = "auto"
    free_new_units: bool | None = None
    isolate: bool | None = None
    quiet_margin: float = 0.0
    lateral: bool = True
    batches: int = 4


# GrowthOptions that the protection part applies (to the units growth added)
NEW_UNIT_PROTECTION = ("free_new_units", "isolate", "quiet_margin")


@dataclass(frozen=True, kw_only=True)
class ProtectionOptions:
    """How what earlier experiences learned is protected (the top-level ``subspace_energy``
    says how strongly).

    :param gating: ``subspace`` (GPM-style protection of the old inputs' subspaces of every
        layer; the one to use), ``mask`` (frozen masks of the most important weights, as in
        the paper; lower ACC in the validation searches, RESULTS.md tables 2b and 3a) or
        ``both``.
    :param importance: score that picks the weights masks freeze: ``taylor`` (|θ·∂L/∂θ|),
        ``fisher`` (mean squared gradient; *experimental*) or ``magnitude`` (|θ|;
        *experimental*). Where masks apply: mask gating, and parameters no subspace basis
        covers (LayerNorm, embeddings).
    :param freeze_ratio: fraction of each tensor's still-free weights frozen at the end of every
        experience, where masks apply.
    :param gate_topk: fraction of free weights with the largest |gradient| updated per step
        (1: all; *experimental*), where masks apply.
    :param project_every: optimizer steps between subspace restores (1: exact projected-gradient
        training; larger is cheaper and still exact at each experience's end and at growth).
        ``None``: by the kind of stream (:data:`STREAM_DEFAULTS`). Subspace gating, and the
        isolation of new units under masks.
    :param head: subspace protection of the output layer: ``auto`` (``seen`` until a
        class-incremental stream shows itself, ``none`` from then on), or one of ``all``,
        ``seen``, ``none`` always (*experimental*: no run fixed one); see
        :class:`~sparsegrow.plugins.freezing.FreezingPlugin`. Subspace gating.
    :param growable_energy: subspace energy of the layers growth can give input room back to
        (consumers of expandable pairs). ``"auto"``: :data:`GROWABLE_ENERGY` (0.99, strict)
        with growth, as ``subspace_energy`` without; ``None``: as ``subspace_energy``.
        Subspace gating, and the isolation of new units under masks.
    :param batchnorm: BatchNorm treatment: ``free``, ``freeze`` or ``cumulative`` (see
        :mod:`sparsegrow.protection.batchnorm`).
    :param batches: number of last training minibatches importance and bases are measured on.
    """

    gating: Gating = "subspace"
    importance: Importance = "taylor"
    freeze_ratio: float = 0.3
    gate_topk: float = 1.0
    project_every: int | None = None
    head: Head = "auto"
    growable_energy: float | Literal["auto"] | None = "auto"
    batchnorm: BatchNorm = "free"
    batches: int = 4


def option_group(group: str, cls: type, value: Any):
    """``value`` of option group ``group`` as an instance of ``cls``, or None when the group is
    switched off (``False``).

    :raises ConfigError: a mapping with a key that is not a field of ``cls``, or a value that is
        neither a bool, a mapping nor a ``cls``.
    """
    if value is True:
        return cls()
    if value is False:
        return None
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{group} must be true, false, a {cls.__name__} or a mapping of its "
                          f"options, got {value!r}")
    accepted = [f.name for f in fields(cls)]
    for key in value:
        if key not in accepted:
            raise ConfigError(f"{group}: unknown option {key!r} (accepted: "
                              f"{', '.join(accepted)})")
    return cls(**value)


def _given(opts, names) -> list[str]:
    """The ``names`` of ``opts`` set to something other than their default."""
    defaults = {f.name: f.default for f in fields(opts) if f.default is not MISSING}
    return [n for n in names if getattr(opts, n) != defaults[n]]


def _warn(message: str) -> None:
    # stacklevel: the user's SparseGrowPlugin(...) call, past the checks, resolve and the
    # constructor
    warnings.warn(message, IgnoredOptionWarning, stacklevel=5)


def resolve(growth: GrowthOptions | None, protection: ProtectionOptions | None, *,
            subspace_energy: Any = None, budget: Any = None, layers: Any = "auto"
            ) -> tuple[GrowthOptions | None, ProtectionOptions | None]:
    """The options with every automatic (``None``) growth default filled in, after checking
    the combinations; a warning for each option given that the rest makes do nothing.

    :raises ConfigError: both parts off, or two options that cannot go together (the message
        names both).
    """
    if growth is None and protection is None:
        raise ConfigError("SparseGrowPlugin with growth: false and protection: false does "
                          "nothing; switch one of them on or remove the plugin")
    gating = protection.gating if protection is not None else ProtectionOptions.gating
    resolved = _resolve_growth(growth, gating) if growth is not None else None
    if resolved is not None and protection is not None:
        _check_net2wider(resolved, gating)
    _warn_ignored(growth, protection, isolating=resolved is not None and resolved.isolate,
                  subspace_energy=subspace_energy, budget=budget, layers=layers)
    if protection is not None and protection.growable_energy == "auto":
        protection = replace(protection, growable_energy=None if resolved is None
                             else GROWABLE_ENERGY)
    return resolved, protection


def _resolve_growth(growth: GrowthOptions, gating: str) -> GrowthOptions:
    masks_only = gating == "mask"
    # Under masks the paper's late, sparse growth lost to early, dense growth on the validation
    # split (tune_gift_masks_permuted_mnist_10, RESULTS.md table 7a); under subspace gating
    # these knobs changed little or cost accuracy (tables 5, 7a).
    free = growth.free_new_units
    if free is None:   # freedom from the subspace protection: nothing to be free of under
        # masks, and no freedom for units asked to be isolated (or copies of old ones)
        free = not (masks_only or growth.init == "net2wider" or growth.isolate
                    or growth.quiet_margin)
    grow_at = growth.grow_at
    if grow_at is None:
        grow_at = 0.0 if masks_only or free else 0.75
    init_density = growth.init_density
    if init_density is None:
        # free new units are protected from their next experience on, and the sparse init's
        # static zeros would fight that projection (the two alternate)
        init_density = 1.0 if masks_only or free else 0.5
    isolate = growth.isolate
    if isolate is None:   # copies of existing units cannot be orthogonal to old inputs
        isolate = growth.init != "net2wider" and not free
    return replace(growth, grow_at=grow_at, init_density=init_density, isolate=isolate,
                   free_new_units=free)


def _check_net2wider(growth: GrowthOptions, gating: str) -> None:
    if growth.init != "net2wider":
        return
    if gating != "mask":
        # subspace gating initialises new units in the complement of old inputs; a copy of an
        # existing unit cannot be there
        raise ConfigError(f"growth.init net2wider copies existing units, which cannot be "
                          f"orthogonal to earlier inputs: use protection.gating 'mask' with it, "
                          f"not {gating!r}")
    if growth.isolate:
        raise ConfigError("growth.init net2wider copies existing units, which cannot be kept "
                          "orthogonal to earlier inputs: set growth.isolate: false with it")


def _warn_ignored(growth: GrowthOptions | None, protection: ProtectionOptions | None, *,
                  isolating: bool, subspace_energy: Any, budget: Any, layers: Any) -> None:
    """A warning for each option given (``growth`` as given, before :func:`_resolve_growth`)
    that the rest makes do nothing; ``isolating``: new units will be isolated."""
    if growth is None:
        ignored = [name for name, given in (("budget", budget not in (None, BUDGET)),
                                            ("layers", layers != "auto")) if given]
        if ignored:
            _warn(f"{', '.join(ignored)} ignored with growth: false")
    elif growth.units is not None:
        ignored = _given(growth, ("energy", "max_ratio", "min_units"))
        if ignored:
            _warn(f"{', '.join(ignored)} ignored: units fixes the number of new units (units: "
                  f"null sizes them from the data)")
    if protection is None:
        if subspace_energy is not None:
            _warn("subspace_energy ignored with protection: false")
        ignored = _given(growth, NEW_UNIT_PROTECTION) if growth is not None else []
        if ignored:
            _warn(f"growth options {', '.join(ignored)} ignored with protection: false (they "
                  f"set how the protection treats new units)")
    elif protection.gating == "mask":
        # masks keep input bases only to isolate new units: without that, the subspace
        # settings have nothing to act on; the output layer's policy never applies to masks
        ignored = _given(protection, ("head",) if isolating else
                         ("project_every", "head", "growable_energy"))
        if subspace_energy is not None and not isolating:
            ignored.insert(0, "subspace_energy")
        if ignored:
            _warn(f"{', '.join(ignored)} ignored under gating 'mask'"
                  + ("" if isolating else " without isolated new units (growth.isolate)"))


def growth_kwargs(growth: GrowthOptions) -> dict[str, Any]:
    """The :class:`~sparsegrow.plugins.growth.GrowthPlugin` keywords of resolved ``growth``."""
    return {k: v for k, v in asdict(growth).items() if k not in NEW_UNIT_PROTECTION}


def protection_kwargs(protection: ProtectionOptions, growth: GrowthOptions | None
                      ) -> dict[str, Any]:
    """The :class:`~sparsegrow.plugins.freezing.FreezingPlugin` keywords of resolved
    ``protection``, with the treatment of new units from ``growth`` (off without growth)."""
    new_units = ({k: getattr(growth, k) for k in NEW_UNIT_PROTECTION} if growth is not None
                 else {"free_new_units": False, "isolate": False, "quiet_margin": 0.0})
    return {**asdict(protection), **new_units}
