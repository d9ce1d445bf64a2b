"""A parameter budget for growth: how many units each event may add so the model never exceeds
it, while every experience still gets the share its own data asks for.

The data-driven rule (:func:`sparsegrow.growth.initializers.growth_size`) says how many units an
experience needs per layer. A budget caps the parameters those units add: each event may spend
the budget left spread evenly over the growth events left in the stream, so an experience that
needs less leaves its share to the later ones, and the model's size levels off at the budget
instead of growing linearly with the stream. The requested sizes are scaled down together (one
factor for every layer) until the exact parameter count of the grown model fits.

Plain PyTorch, no Avalanche.
"""

from __future__ import annotations

import math

from torch import nn

from sparsegrow.errors import ConfigError
from sparsegrow.growth.graph import ExpandablePair

# of the budget left, the share an event takes when the stream's length is unknown
UNKNOWN_LENGTH_SHARE = 4


def resolve_budget(budget: int | float, initial: int) -> int:
    """The budget in parameters: an int is a count; a float is a multiple of ``initial``, the
    model's parameter count when growth first ran."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise ConfigError(f"budget must be a positive number of parameters (int) or a multiple "
                          f"of the initial model's (float), got {budget!r}")
    return int(budget) if isinstance(budget, int) else math.floor(budget * initial)


def added_parameters(model: nn.Module, pairs: list[ExpandablePair], sizes: dict[str, int], *,
                     blocks: dict[str, int] | None = None) -> int:
    """Exact number of parameters that widening each producer of ``pairs`` by
    ``sizes[producer]`` units (0 or absent: not widened) adds to ``model``, without touching
    the model.

    A producer's parameters and its pair's per-feature modules (BatchNorm, depthwise Conv2d)
    gain rows; its consumer gains input columns (``spatial`` of them per unit after a flatten).
    When a layer is both a consumer and a producer, both of its dimensions grow.

    :param blocks: growth in blocks (:mod:`sparsegrow.growth.blocks`): each grown producer's
        width before any growth. The entries blocks keep at zero are not parameters. ``None``:
        dense.
    """
    if blocks is not None:
        return _added_in_blocks(model, pairs, sizes, blocks)
    shapes = {name: list(p.shape) for name, p in model.named_parameters()}
    before = sum(math.prod(shape) for shape in shapes.values())
    for pair in pairs:
        m = sizes.get(pair.producer, 0)
        if not m:
            continue
        for module in (pair.producer, *pair.between):
            for name, _ in model.get_submodule(module).named_parameters(recurse=False):
                shapes[f"{module}.{name}"][0] += m
        shapes[f"{pair.consumer}.weight"][1] += m * pair.spatial
    return sum(math.prod(shape) for shape in shapes.values()) - before


def _added_in_blocks(model: nn.Module, pairs: list[ExpandablePair], sizes: dict[str, int],
                     initial: dict[str, int]) -> int:
    feeding = {pair.consumer: pair for pair in pairs}
    added = 0
    for pair in pairs:
        m = sizes.get(pair.producer, 0)
        if not m:
            continue
        below = feeding.get(pair.producer)
        for module in (pair.producer, *pair.between):
            for name, p in model.get_submodule(module).named_parameters(recurse=False):
                row = math.prod(p.shape[1:])
                if module == pair.producer and name == "weight" and below is not None \
                        and sizes.get(below.producer, 0):
                    # a new row reads only the block grown below it in the same event
                    row = row // p.shape[1] * sizes[below.producer] * below.spatial
                added += m * row
        consumer = model.get_submodule(pair.consumer).weight
        if pair.consumer not in initial:   # the output layer: every row reads the new units
            # (a grown consumer's new rows read them too, counted above as rows)
            added += consumer.shape[0] * m * pair.spatial * math.prod(consumer.shape[2:])
    return added


def fit_budget(sizes: dict[str, int], cost, allowance: int) -> dict[str, int]:
    """The largest common scaling of ``sizes`` whose ``cost`` (parameters added, a function of
    a sizes dict) stays within ``allowance``; each size is rounded down.

    :param sizes: units each producer asks for.
    :param cost: ``cost(sizes) -> int``, the parameters those sizes would add (monotone).
    :param allowance: the most parameters this event may add (≤ 0: nothing grows).
    """
    if cost(sizes) <= allowance:
        return dict(sizes)
    biggest = max(sizes.values(), default=0)
    low, high = 0, biggest           # largest k with cost(sizes scaled to k/biggest) ≤ allowance
    while low < high:
        mid = (low + high + 1) // 2
        if cost(_scaled(sizes, mid, biggest)) <= allowance:
            low = mid
        else:
            high = mid - 1
    return _scaled(sizes, low, biggest)


def _scaled(sizes: dict[str, int], k: int, biggest: int) -> dict[str, int]:
    return {name: m * k // biggest for name, m in sizes.items()}


def event_allowance(*, budget: int, params: int, events_left: int | None) -> int:
    """Parameters the current growth event may add: the budget left spread evenly over the
    growth events left (this one included), or a quarter of it when the stream's length is
    unknown (so a long stream of unknown length still keeps room for its later experiences)."""
    left = budget - params
    if left <= 0:
        return 0
    if events_left is None:
        return left // UNKNOWN_LENGTH_SHARE
    return left // max(events_left, 1)
