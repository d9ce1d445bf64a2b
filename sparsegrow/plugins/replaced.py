"""Following a model that the strategy replaced, reset or reshaped between experiences.

GDumb trains a fresh copy of the initial model at every experience; a user may swap a layer
for a smaller one, or freeze one. What the plugins keep per parameter or per layer follows
these rules:

- A new model object: the knowledge that masks, subspace anchors and BatchNorm snapshots
  protect lived in the old object's weights, which are gone. Keeping the bases would anchor
  the fresh model's *initial* response on old inputs and forbid it to relearn them (from
  GDumb's buffer), so all per-model state is dropped and the new model is analysed afresh
  (a new growth engine, growable layers and output layer found again, birth-gate records
  cleared). Facts about the stream carry: its kind (class- or domain-incremental), the
  classes seen, the growth history and timings.
- The same object with a parameter that shrank, changed rank or disappeared: that
  parameter's locks are dropped (they describe entries that no longer exist), and so is the
  subspace basis of a layer whose input shrank or that is gone; everything else carries
  (a parameter that grew is padded as usual).
- A layer whose parameters were frozen (``requires_grad=False``): nothing can change it, so
  its basis is kept, unused, for when it trains again.
"""

from __future__ import annotations

import logging

import torch

from sparsegrow.protection.masks import ParamLocks

_log = logging.getLogger(__name__)


class ModelWatch:
    """Whether the strategy's model is still the object seen last time.

    The reference is not pickled (a checkpoint holds the model itself): after loading, the
    next model seen is taken as the same one.
    """

    def __init__(self):
        self._model: torch.nn.Module | None = None

    def replaced(self, model: torch.nn.Module) -> bool:
        """Whether ``model`` is another object than the one seen last; remembers it."""
        new = self._model is not None and model is not self._model
        self._model = model
        return new

    def __getstate__(self):
        return {"_model": None}


def drop_unfollowable_locks(locks: ParamLocks, params: dict[str, torch.Tensor]) -> list[str]:
    """Forget the locks of parameters that disappeared, shrank or changed rank.

    :return: the names dropped.
    """
    dropped = []
    for name, mask in list(locks.frozen.items()):
        p = params.get(name)
        if p is None or p.dim() != mask.dim() or any(a > b for a, b in zip(mask.shape, p.shape)):
            for table in (locks.frozen, locks.pinned, locks.values, locks._free):
                table.pop(name, None)
            dropped.append(name)
    if dropped:
        _log.warning("the model's parameters %s shrank, changed rank or disappeared: their "
                     "frozen entries are dropped", ", ".join(dropped))
    return dropped


def drop_unfollowable_bases(memory, model: torch.nn.Module) -> list[str]:
    """Forget the subspace bases of layers that disappeared or whose input shrank
    (``memory``: a :class:`~sparsegrow.protection.subspace.SubspaceMemory`).

    :return: the layer names dropped.
    """
    modules = dict(model.named_modules())
    dropped = []
    for name in list(memory.bases):
        module = modules.get(name)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight[0].numel() < memory._dims[name]:
            for table in (memory.bases, memory.anchors, memory._dims):
                table.pop(name, None)
            dropped.append(name)
    if dropped:
        _log.warning("the model's layers %s disappeared or their input shrank: their "
                     "protected subspaces are dropped", ", ".join(dropped))
    return dropped
