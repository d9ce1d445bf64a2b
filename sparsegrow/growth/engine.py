"""`Grower`: one façade over analysis, surgery, initialisers, optimizer state, tracked tensors."""

from __future__ import annotations

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError
from sparsegrow.growth.cross_covariance import Spectrum, spectra
from sparsegrow.growth.deepen import add_branch, insert_layer
from sparsegrow.growth.graph import ExpandablePair, GraphReport, analyse
from sparsegrow.growth.initializers import check_init, growth_size, initialize
from sparsegrow.growth.layers import get_layer, width
from sparsegrow.growth.optimizer_state import add_parameters, replace_parameters
from sparsegrow.growth.surgery import pad_to, widen
from sparsegrow.growth.tracked import TrackedTensors


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


class Grower:
    """Grow an ordinary ``nn.Module`` in place and keep everything attached to it consistent.

    The graph analysis is redone whenever the model's modules or parameter shapes changed (by
    this object or by anyone else, e.g. an Avalanche ``IncrementalClassifier`` adapting), so a
    ``Grower`` stays valid across any number of growth events and can be re-created on a grown
    model at any time.

    :param model: the model to grow (changed in place).
    :param optimizer: optimizer whose parameters and state follow growth (same object kept).
    :param example: an input batch (a few samples suffice), used only if torch.fx cannot trace
        the forward: the analysis then exports the model on it with ``torch.export``. May be
        set or replaced later through the attribute of the same name.
    """

    def __init__(self, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                 example: torch.Tensor | None = None):
        self.model = model
        self.optimizer = optimizer
        self.example = example
        self.history: list[dict] = []
        self._tracked = TrackedTensors()
        self._report: GraphReport | None = None
        self._signature = None

    def _current_signature(self):
        return (tuple((n, id(m)) for n, m in self.model.named_modules()),
                tuple((n, tuple(p.shape)) for n, p in self.model.named_parameters()))

    @property
    def report(self) -> GraphReport:
        """The graph analysis of the model as it is now."""
        signature = self._current_signature()
        if self._report is None or signature != self._signature:
            self._report = analyse(self.model, self.example)
            self._signature = signature
        return self._report

    @property
    def pairs(self) -> list[ExpandablePair]:
        """The expandable pairs of the model as it is now, in graph order."""
        return self.report.pairs

    def pair(self, producer: str) -> ExpandablePair:
        """The pair of ``producer``; a :class:`GrowthError` naming the layer and reason if none."""
        get_layer(self.model, producer)
        return self.report.pair(producer)

    def widths(self) -> dict[str, int]:
        """Output width of every Linear/Conv2d layer in graph order."""
        return {name: width(self.model.get_submodule(name)) for name in self.report.layers}

    # ----------------------------------------------------------------------------- data-driven
    def spectrum(self, batches, loss_fn, *, layers=None) -> dict[str, Spectrum]:
        """M and its SVD per pair (all pairs, or the producers in ``layers``), in one pass.

        :param batches: iterable of ``(x, y, ...)``; consumed once (pass a list to reuse it).
        :param loss_fn: ``loss_fn(model(x), y)``, averaged over the batch.
        """
        pairs = self.pairs if layers is None else [self.pair(name) for name in layers]
        return spectra(self.model, pairs, batches, loss_fn)

    def growth_sizes(self, spectra_by_layer: dict[str, Spectrum], *, energy: float = 0.9,
                     min_units: int = 0, max_ratio: float = 0.25,
                     conv_multiple: int = 1) -> dict[str, int]:
        """Units per producer from each spectrum by the energy rule (see ``growth_size``);
        Conv2d producers' widths are aligned to ``conv_multiple`` channels."""
        sizes = {}
        for name, s in spectra_by_layer.items():
            layer = get_layer(self.model, name)
            multiple = conv_multiple if isinstance(layer, nn.Conv2d) else 1
            sizes[name] = growth_size(s.singular_values, energy=energy, min_units=min_units,
                                      max_ratio=max_ratio, width=width(layer), multiple=multiple)
        return sizes

    # ------------------------------------------------------------------------------- growth
    def widen(self, producer: str, m: int, *, init: str = "on_data", batches=None, loss_fn=None,
              init_density: float = 1.0, generator: torch.Generator | None = None,
              spectrum: Spectrum | None = None,
              basis: torch.Tensor | None = None) -> torch.Tensor:
        """Widen ``producer`` (and its pair's BatchNorms and consumer) by ``m`` units.

        :param producer: name of the producer layer of an expandable pair.
        :param m: number of units to add (0 changes nothing).
        :param init: ``random``, ``zero_out``, ``net2wider`` or ``on_data``.
        :param batches: batches for ``on_data`` when no ``spectrum`` is given.
        :param loss_fn: loss for ``on_data`` when no ``spectrum`` is given.
        :param init_density: fraction of each new unit's incoming weights kept non-zero.
        :param generator: random generator (CPU) for the random parts.
        :param spectrum: precomputed M of this pair (from :meth:`spectrum`), for ``on_data``.
        :param basis: orthonormal columns in P's input space that new incoming rows avoid.
        :return: bool mask of the producer's new weight, True where an entry may be non-zero.
        """
        pair = self.pair(producer)
        check_init(init, init_density, producer)
        if m == 0:
            return torch.ones_like(get_layer(self.model, producer).weight, dtype=torch.bool)
        if init == "on_data" and spectrum is None:
            if batches is None or loss_fn is None:
                raise GrowthError(f"cannot widen '{producer}' with init on_data: give batches and "
                                  "loss_fn, or a spectrum")
            spectrum = spectra(self.model, [pair], batches, loss_fn)[producer]
        before = count_parameters(self.model)
        replaced = widen(self.model, pair, m)
        m = int(m)
        mask = initialize(init, self.model, pair, m, generator=generator,
                          init_density=init_density, spectrum=spectrum, basis=basis)
        self._after_growth(replaced)
        self.history.append({"op": "widen", "layer": producer, "consumer": pair.consumer,
                             "units": m, "init": init, "init_density": init_density,
                             "params_before": before,
                             "params_after": count_parameters(self.model)})
        return mask

    def widen_many(self, sizes: dict[str, int], *, init: str = "on_data", batches=None,
                   loss_fn=None, init_density: float = 1.0,
                   generator: torch.Generator | None = None,
                   spectra_by_layer: dict[str, Spectrum] | None = None,
                   bases: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Widen several producers in one growth event; M is computed once for all of them.

        Producers are widened from the last to the first in graph order, so that each one's
        input space is still the one its M was measured in.

        :param sizes: {producer: units}.
        :param spectra_by_layer: precomputed spectra (else computed from ``batches``/``loss_fn``
            for ``on_data``).
        :param bases: {producer: basis} for initialisation in the orthogonal complement.
        :return: {producer: mask} as from :meth:`widen`, with the shape of the producer's weight
            after the whole event (input columns added by an upstream widening are True: they are
            outgoing weights of the upstream new units, free to train).
        """
        order = [p.producer for p in self.pairs]
        for name in sizes:
            self.pair(name)
        names = sorted((n for n, m in sizes.items() if m), key=order.index, reverse=True)
        if init == "on_data" and spectra_by_layer is None and names:
            if batches is None or loss_fn is None:
                raise GrowthError("cannot widen with init on_data: give batches and loss_fn, or "
                                  "spectra")
            spectra_by_layer = self.spectrum(batches, loss_fn, layers=names)
        masks = {}
        for name in names:
            masks[name] = self.widen(
                name, sizes[name], init=init, init_density=init_density, generator=generator,
                spectrum=(spectra_by_layer or {}).get(name), basis=(bases or {}).get(name))
        return {name: pad_to(mask, get_layer(self.model, name).weight.shape, True)
                for name, mask in masks.items()}

    def deepen(self, after: str, *, init: str = "random",
               generator: torch.Generator | None = None) -> list[str]:
        """Insert a hidden layer + ReLU after ``after`` (see ``deepen.insert_layer``).

        :return: names of the new parameters.
        """
        before = count_parameters(self.model)
        names = insert_layer(self.model, after, init=init, generator=generator)
        self._added(after, names, before, {"op": "deepen", "layer": after, "init": init})
        return names

    def branch(self, layer: str, *, generator: torch.Generator | None = None) -> list[str]:
        """Add a random parallel branch summed into ``layer``'s output (see ``deepen.add_branch``).

        :return: names of the new parameters.
        """
        before = count_parameters(self.model)
        names = add_branch(self.model, layer, generator=generator)
        self._added(layer, names, before, {"op": "branch", "layer": layer, "init": "random"})
        return names

    def replay(self, history: list[dict]) -> None:
        """Redo the structural changes recorded in ``history`` (e.g. saved with a checkpoint).

        A fresh model then has the shapes and modules of the grown one, ready for
        ``load_state_dict``; the values written here (zero outgoing weights, identity layers) are
        placeholders that loading overwrites. ``history``'s entries are appended unchanged to
        :attr:`history`.
        """
        replayed = len(self.history)
        for entry in history:
            if entry["op"] == "widen":
                self.widen(entry["layer"], entry["units"], init="zero_out")
            elif entry["op"] == "deepen":
                self.deepen(entry["layer"], init="identity")
            elif entry["op"] == "branch":
                self.branch(entry["layer"])
            else:
                raise GrowthError(f"cannot replay growth history: unknown op {entry['op']!r}")
        self.history[replayed:] = [dict(entry) for entry in history]

    def _added(self, layer: str, names: list[str], before: int, entry: dict) -> None:
        if self.optimizer is not None:
            like = get_layer(self.model, layer).weight
            add_parameters(self.optimizer, [self.model.get_parameter(n) for n in names], like=like)
        self.history.append({**entry, "new_params": list(names), "params_before": before,
                             "params_after": count_parameters(self.model)})

    def _after_growth(self, replaced) -> None:
        if self.optimizer is not None:
            replace_parameters(self.optimizer, replaced)
        self._tracked.grow(replaced)

    # ------------------------------------------------------------------------- tracked tensors
    def track(self, param_name: str, key: str, tensor: torch.Tensor, *, fill) -> None:
        """Register a tensor shaped like parameter ``param_name``; growth pads it with ``fill``."""
        try:
            param = self.model.get_parameter(param_name)
        except AttributeError:
            raise GrowthError(f"cannot track '{key}': the model has no parameter "
                              f"'{param_name}'") from None
        self._tracked.track(param_name, key, tensor, fill=fill, shape=param.shape)

    def tracked(self, param_name: str, key: str) -> torch.Tensor:
        """The tensor registered under ``(param_name, key)``, padded by every growth since."""
        return self._tracked.get(param_name, key)
