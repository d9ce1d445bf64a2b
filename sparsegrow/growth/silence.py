"""Silence the units a model gained after some point, to measure what they cost earlier data.

Growth's new units can only move an old experience's predictions through their responses to
that experience's inputs (their outgoing weights start at zero). Evaluating experience i with
every unit grown after i silenced, and comparing with the plain evaluation, measures exactly
that share of forgetting: an upper bound on what any way of keeping new units quiet on old
inputs can recover (RESULTS.md table 7).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn

from sparsegrow.growth.graph import ExpandablePair


@contextmanager
def later_units_silenced(model: nn.Module, pairs: list[ExpandablePair],
                         widths: dict[str, int]) -> Iterator[None]:
    """Within the block, each producer's units beyond ``widths[producer]`` reach their consumer
    as zeros: the consumer's input columns of those units (a Linear's ``spatial`` columns per
    unit after a conv and Flatten; a conv's input channels) are zeroed by a forward pre-hook,
    after any BatchNorm between them, so nothing of the later units gets through.

    :param model: the grown model.
    :param pairs: its expandable pairs (:attr:`sparsegrow.growth.Grower.pairs`).
    :param widths: producer name → its width at the point to go back to; producers it does not
        name, or that have not grown since, are left alone.
    """
    hooks = []
    for pair in pairs:
        old = widths.get(pair.producer)
        consumer = model.get_submodule(pair.consumer)
        if old is None:
            continue
        start = old * pair.spatial if isinstance(consumer, nn.Linear) else old
        dim = -1 if isinstance(consumer, nn.Linear) else 1

        def silence(module, args, start=start, dim=dim):
            x = args[0]
            if x.shape[dim] <= start:
                return None
            x = x.clone()
            x.narrow(dim, start, x.shape[dim] - start).zero_()
            return (x, *args[1:])

        hooks.append(consumer.register_forward_pre_hook(silence))
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
