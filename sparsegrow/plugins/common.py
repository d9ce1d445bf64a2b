"""Small helpers shared by the plugins: recent training batches, RNG-neutral blocks, timing,
where the model lives and whether it is distributed."""

from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager

import torch

from sparsegrow.errors import ConfigError, IncompatiblePluginError


class RecentBatches:
    """The last ``n`` training minibatches ``(x, y)`` of the current experience.

    The growth and importance passes run on these, so they cost no extra data loading and see
    exactly what the strategy trains on (including replayed samples when replay is used).
    """

    def __init__(self, n: int):
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"the number of batches must be a positive integer, got {n!r}")
        self._items: deque = deque(maxlen=n)

    def add(self, strategy) -> None:
        self._items.append((strategy.mb_x.detach(), strategy.mb_y.detach()))

    def get(self) -> list:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@contextmanager
def rng_preserved():
    """Run a block without changing the global torch RNG state (CPU and CUDA), so that adding a
    measurement does not change the training that follows."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextmanager
def timed(timings: dict, key: str, device: torch.device | None = None, *,
          pending: list | None = None):
    """Add the block's time in seconds to ``timings[key]``.

    CUDA runs kernels asynchronously, so wall time around a block on a CUDA ``device`` would
    count launches, not work. A pass (growth, importance: once per experience) synchronises
    the device at both ends. A per-step block passes ``pending`` instead: CUDA events are
    recorded around it without a host sync, and :func:`settle` adds their times later.
    """
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda and pending is not None:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        try:
            yield
        finally:
            end.record()
            pending.append((key, start, end))
        return
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        if cuda:
            torch.cuda.synchronize(device)
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def settle(timings: dict, pending: list) -> None:
    """Add the times of the CUDA events :func:`timed` left in ``pending`` (one host sync)."""
    if pending:
        pending[-1][2].synchronize()
    for key, start, end in pending:
        timings[key] = timings.get(key, 0.0) + start.elapsed_time(end) / 1000
    pending.clear()


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's parameters, where every tensor of a plugin's state lives."""
    return next(model.parameters()).device


def refuse_distributed(strategy, plugin: str, reason: str) -> None:
    """An :class:`IncompatiblePluginError` under torch.distributed or for a model wrapped in
    ``DataParallel``/``DistributedDataParallel`` (Avalanche only warns about a plugin that does
    not support distributed training)."""
    wrapped = isinstance(strategy.model, (torch.nn.DataParallel,
                                          torch.nn.parallel.DistributedDataParallel))
    if wrapped or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        how = (f"a {type(strategy.model).__name__}-wrapped model" if wrapped
               else "distributed training (torch.distributed is initialised)")
        raise IncompatiblePluginError(f"{plugin} does not support {how}: {reason}; train the "
                                      "unwrapped model in one process")


def choice(name: str, value, options) -> None:
    """A :class:`ConfigError` naming the option unless ``value`` is one of ``options``."""
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")


def fraction(name: str, value, *, low_open: bool = False) -> float:
    """``value`` as a float in [0, 1] ((0, 1] with ``low_open``), or a :class:`ConfigError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 < v <= 1.0 if low_open else 0.0 <= v <= 1.0):
        raise ConfigError(f"{name} must be in {'(0, 1]' if low_open else '[0, 1]'}, got {value!r}")
    return v
