"""Growth in blocks: each growth event's units form a column of their own.

Dense widening connects a new unit of a layer to every unit of the layer below, and every unit
of the layer above to it, so the weights a block of ``m`` units adds grow with the width already
grown: on Permuted MNIST 50 the 2×50 MLP's 800,000-parameter budget shrank its blocks from 16 to
8 units (RESULTS.md table 7c). In a block, the new units of a layer read only the new units of
the layer below grown in the same event (the first grown layer reads its whole input), and no
older unit of a grown layer reads them; the output layer, which no growth widens, reads every
unit. A block then costs the same at every event, and its weights outside that pattern are
structural zeros: kept at exactly 0, and not counted as parameters.

A block is meant to serve the experience it was grown in, alone: the birth gate with blocks
(:class:`sparsegrow.growth.birth_gate.BirthGate`) sends each input to the block of its nearest
experience (the initial units for the first), and the block is locked (bit-identical) once its
experience ends. What several experiences then share is the output layer, under the protection.
The growth event runs with that gate on, so its measuring pass reaches no new unit (the block is
not there yet) and gives the new units no gradient: the on-data initialisation then falls back
to random orthonormal rows, and :func:`init_blocks` draws the weights between a block's layers.

Plain PyTorch, no Avalanche.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsegrow.growth.graph import ExpandablePair


def block_zeros(model: nn.Module, pairs: list[ExpandablePair], before: dict[str, int],
                initial: dict[str, int]) -> dict[str, torch.Tensor]:
    """The weight entries a growth event's blocks keep at zero, after the event widened the
    producers of ``before`` (their widths before it).

    :param pairs: the model's expandable pairs.
    :param before: producer → its width before the event (grown producers only).
    :param initial: producer → its width before any growth, for every producer growth widens
        (rows below it are the initial units, which read every unit).
    :return: ``{"<layer>.weight": bool mask}`` (True: kept at zero) for each weight with such
        entries.
    """
    zeros: dict[str, torch.Tensor] = {}

    def mask(layer: str) -> torch.Tensor:
        name = f"{layer}.weight"
        if name not in zeros:
            zeros[name] = torch.zeros_like(model.get_submodule(layer).weight, dtype=torch.bool)
        return zeros[name]

    for pair in pairs:
        if pair.producer not in before or pair.consumer not in initial:
            continue
        old = before[pair.producer] * pair.spatial   # input columns of the older units
        rows = model.get_submodule(pair.consumer).weight.shape[0]
        first_new_row = before.get(pair.consumer, rows)
        # no older unit of the consumer reads the new units, and its new ones read nothing else
        mask(pair.consumer)[:first_new_row, old:] = True
        mask(pair.consumer)[first_new_row:, :old] = True
    return {name: m for name, m in zeros.items() if m.any()}


@torch.no_grad()
def init_blocks(model: nn.Module, pairs: list[ExpandablePair], before: dict[str, int],
                generator: torch.Generator | None = None) -> None:
    """Give the weights from one new block to the next random values, as ``nn.Linear`` and
    ``nn.Conv2d`` draw them (uniform in ±1/√fan-in), with the block's inputs as fan-in.

    Widening leaves them at zero, which keeps the function but would keep the block dead: with
    its input and output weights both zero, no gradient reaches either. The consumer's new
    units still have zero outgoing weights, so the function stays unchanged.
    """
    for pair in pairs:
        if pair.producer not in before or pair.consumer not in before:
            continue
        weight = model.get_submodule(pair.consumer).weight
        old_rows, old_cols = before[pair.consumer], before[pair.producer] * pair.spatial
        block = weight[old_rows:, old_cols:]
        fan_in = block[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        values = torch.rand(block.shape, generator=generator, dtype=torch.float32)
        block.copy_((values * 2 - 1) * bound)


def block_rows(model: nn.Module, pairs: list[ExpandablePair], initial: dict[str, int],
               ) -> dict[str, torch.Tensor]:
    """Bool masks of the entries that belong to blocks (rows past ``initial``) of every
    parameter of each grown producer and of the per-feature modules between it and its
    consumer (BatchNorm, depthwise Conv2d): what is locked once a block's experience ends."""
    rows: dict[str, torch.Tensor] = {}
    for pair in pairs:
        start = initial.get(pair.producer)
        if start is None:
            continue
        for module in (pair.producer, *pair.between):
            for name, p in model.get_submodule(module).named_parameters(recurse=False):
                mask = torch.zeros_like(p, dtype=torch.bool)
                mask[start:] = True
                rows[f"{module}.{name}"] = mask
    return rows
