"""Checkpoints that refer to the benchmark's data instead of copying it.

A replay buffer (or any plugin state) holds subsets of the training datasets; pickled as they
are, they carry the whole underlying image tensor with them (155 MB per Permuted MNIST
checkpoint, rewritten after every experience). The benchmark is rebuilt identically on resume
(same config, same seed), so its large tensors and arrays are written as references — their
position in the benchmark, shape, dtype and a fingerprint of their values — and resolved to the
rebuilt benchmark's objects when the checkpoint loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import types

import numpy as np
import torch

from sparsegrow.errors import ConfigError

# Smaller tensors are cheaper to copy than to look up.
MIN_BYTES = 1 << 20

_loading: dict | None = None   # key → object, while a checkpoint loads


def _nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * obj.element_size()
    if isinstance(obj, np.ndarray) and obj.dtype != object:   # object arrays hold pointers
        return obj.nbytes
    return -1


def _fingerprint(obj) -> str:
    """A hash of 4096 evenly spaced elements: tells apart arrays of one shape and dtype."""
    if isinstance(obj, torch.Tensor):
        flat = obj.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)].cpu().to(torch.float64).numpy()
    else:
        flat = obj.reshape(-1)
        sample = np.ascontiguousarray(flat[:: max(1, flat.size // 4096)])
    return hashlib.sha1(sample.tobytes()).hexdigest()[:16]


class _Discard:
    # ``data`` is bytes or, for a large enough array, a PickleBuffer of its memory (no len())
    def write(self, data) -> None:
        pass


class SharedArrays:
    """The large tensors and arrays reachable from ``roots`` (the benchmark's datasets), in the
    order pickling meets them."""

    def __init__(self, roots):
        found = []

        class Finder(pickle.Pickler):
            def reducer_override(self, obj):
                if _nbytes(obj) >= MIN_BYTES:
                    found.append(obj)
                    return tuple, ()          # found, not copied
                return NotImplemented

        try:
            Finder(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(roots)
        except (pickle.PicklingError, TypeError, AttributeError):
            # a dataset pickle cannot walk (a lambda transform, ...): checkpoints copy its data
            found = []
        self._objects = found                 # kept alive: their ids stay theirs
        self._keys = {id(a): (i, tuple(a.shape), str(a.dtype), _fingerprint(a))
                      for i, a in enumerate(found)}
        self._by_key = {key: a for a, key in zip(found, self._keys.values())}

    def __len__(self) -> int:
        return len(self._objects)

    def pickle_module(self):
        """A ``pickle_module`` for :func:`torch.save` writing the shared objects as references."""
        keys = self._keys

        class Pickler(pickle.Pickler):
            def reducer_override(self, obj):
                key = keys.get(id(obj))
                return (_resolve, (key,)) if key is not None else NotImplemented

        return types.SimpleNamespace(__name__="pickle", Pickler=Pickler)

    @contextlib.contextmanager
    def resolving(self):
        """References in a checkpoint loaded inside this block resolve to these objects."""
        global _loading
        previous, _loading = _loading, self._by_key
        try:
            yield
        finally:
            _loading = previous


def _resolve(key):
    index, shape, dtype, fingerprint = key
    key = (index, tuple(shape), dtype, fingerprint)
    if _loading is None or key not in _loading:
        raise ConfigError(f"the checkpoint refers to benchmark data (array {index}, shape "
                          f"{tuple(shape)}, {dtype}) that the rebuilt benchmark does not have; "
                          f"move the run folder away to start the run afresh")
    return _loading[key]
