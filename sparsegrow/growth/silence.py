"""Silence the units a model gained after some point, to measure what they cost earlier data.

Growth's new units can only move an old experience's predictions through their responses to
that experience's inputs (their outgoing weights start at zero). Evaluating experience i with
every unit grown after i silenced, and comparing with the plain evaluation, measures exactly
that share of forgetting: an upper bound on what any way of keeping new units quiet on old
inputs can recover (RESULTS.md table 7). :mod:`sparsegrow.growth.birth_gate` does the same per
input at evaluation, without being told the input's experience.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn as nn

from sparsegrow.growth.graph import ExpandablePair


def zero_beyond(x: torch.Tensor, start, dim: int) -> torch.Tensor:
    """``x`` with its entries at index ``≥ start`` along ``dim`` zeroed (a copy).

    :param start: an int (the same for every sample) or a tensor of one start per sample
        (dimension 0 of ``x``).
    """
    index = torch.arange(x.shape[dim], device=x.device)
    shape = [1] * x.dim()
    shape[dim] = -1
    index = index.view(shape)
    if torch.is_tensor(start):
        start = start.to(x.device).view([-1] + [1] * (x.dim() - 1))
    return x * (index < start).to(x.dtype)


def keep_units(x: torch.Tensor, keep: torch.Tensor, dim: int, per_unit: int) -> torch.Tensor:
    """``x`` with the columns of the units that ``keep`` (bool, one row of units per sample)
    leaves out zeroed (a copy); ``per_unit`` columns per unit along ``dim``."""
    mask = keep.repeat_interleave(per_unit, dim=1).to(x.dtype)
    shape = [len(x)] + [1] * (x.dim() - 1)
    shape[dim] = mask.shape[1]
    return x * mask.view(shape)


def consumer_columns(consumer: nn.Module, pair: ExpandablePair) -> tuple[int, int]:
    """(dimension, columns per producer unit) of the consumer's input that carry the producer's
    units: a Linear's ``spatial`` last-dimension columns per unit (after a conv and Flatten), a
    conv's input channels."""
    if isinstance(consumer, nn.Linear):
        return -1, pair.spatial
    return 1, 1


def silence_hook(consumer: nn.Module, pair: ExpandablePair,
                 units: Callable[[torch.Tensor], object]):
    """Register a forward pre-hook on ``consumer`` that zeroes the input columns of the
    producer's units at index ``≥ units(x)`` (an int or a per-sample tensor), or of the units a
    bool ``[samples, units]`` tensor leaves out, or leaves ``x`` alone where ``units(x)`` is
    None; returns the hook handle. Hooking the consumer, after any BatchNorm between the two,
    lets nothing of the silenced units through."""
    dim, per_unit = consumer_columns(consumer, pair)

    def silence(module, args):
        start = units(args[0])
        if start is None:
            return None
        if torch.is_tensor(start) and start.dtype == torch.bool:
            return (keep_units(args[0], start, dim, per_unit), *args[1:])
        return (zero_beyond(args[0], start * per_unit, dim), *args[1:])

    return consumer.register_forward_pre_hook(silence)


@contextmanager
def later_units_silenced(model: nn.Module, pairs: list[ExpandablePair],
                         widths: dict[str, int]) -> Iterator[None]:
    """Within the block, each producer's units beyond ``widths[producer]`` reach their consumer
    as zeros (see :func:`silence_hook`).

    :param model: the grown model.
    :param pairs: its expandable pairs (:attr:`sparsegrow.growth.Grower.pairs`).
    :param widths: producer name → its width at the point to go back to; producers it does not
        name, or that have not grown since, are left alone.
    """
    hooks = [silence_hook(model.get_submodule(pair.consumer), pair,
                          lambda x, old=widths[pair.producer]: old)
             for pair in pairs if pair.producer in widths]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
