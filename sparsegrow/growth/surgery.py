"""Widen an expandable pair by m units, appended at the end of every dimension that grows.

:func:`widen` does the structure only and is exactly function preserving: the new incoming rows
of P, its new biases and the new input columns of C are zero; new BatchNorm channels have weight
1, bias 0, running mean 0 and running variance 1; new channels of a depthwise Conv2d between
them get the identity kernel (a 1 at the kernel's centre, bias 0), so a new unit's signal passes
on to C as it would without the filter (a zero filter would leave the new unit dead: no
gradient would reach its incoming or outgoing weights). The initialisers
(:mod:`sparsegrow.growth.initializers`) then write values into the new slices. Every grown tensor
is a *new* ``nn.Parameter`` (or buffer) on the old one's device and dtype with the same
``requires_grad``; modules keep their train/eval mode and their size attributes are updated.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError
from sparsegrow.growth.graph import ExpandablePair
from sparsegrow.growth.layers import get_layer, get_module

Replaced = dict[str, tuple[torch.Tensor, torch.Tensor]]


def pad_to(tensor: torch.Tensor, shape, fill) -> torch.Tensor:
    """A new tensor of ``shape`` holding ``tensor`` in its leading corner and ``fill`` elsewhere.

    Growth only appends at the end of dimensions, so this is how everything that follows a
    parameter (optimizer moments, masks, scores) grows with it.
    """
    out = torch.full(tuple(shape), fill, dtype=tensor.dtype, device=tensor.device)
    out[tuple(slice(0, s) for s in tensor.shape)] = tensor
    return out


def _grow_param(module: nn.Module, prefix: str, attr: str, shape, fill, replaced: Replaced):
    old = getattr(module, attr)
    if old is None:
        return
    new = nn.Parameter(pad_to(old.detach(), shape, fill), requires_grad=old.requires_grad)
    setattr(module, attr, new)
    replaced[f"{prefix}.{attr}" if prefix else attr] = (old, new)


def _grow_buffer(module: nn.Module, attr: str, shape, fill):
    old = getattr(module, attr)
    if old is not None:
        setattr(module, attr, pad_to(old, shape, fill))


def _widen_depthwise(conv: nn.Conv2d, name: str, n: int, m: int, replaced: Replaced) -> None:
    _grow_param(conv, name, "weight", (n + m, *conv.weight.shape[1:]), 0.0, replaced)
    _grow_param(conv, name, "bias", (n + m,), 0.0, replaced)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight[n:, 0, (kh - 1) // 2, (kw - 1) // 2] = 1.0
    conv.in_channels = conv.out_channels = conv.groups = n + m


def widen(model: nn.Module, pair: ExpandablePair, m: int) -> Replaced:
    """Append ``m`` zero units to ``pair.producer`` (function preserving; values set later).

    :param model: the model to change in place.
    :param pair: the pair from :func:`sparsegrow.growth.graph.analyse`.
    :param m: number of units (output features or channels) to add, ≥ 1.
    :return: {parameter name: (old Parameter, new Parameter)} for every replaced parameter.
    """
    if not isinstance(m, numbers.Integral) or m < 1:
        raise GrowthError(f"cannot widen layer '{pair.producer}' by {m!r} units: "
                          "the number of units must be a positive integer")
    m = int(m)
    producer = get_layer(model, pair.producer)
    consumer = get_layer(model, pair.consumer)
    replaced: Replaced = {}
    n = producer.weight.shape[0]

    shape = (n + m, *producer.weight.shape[1:])
    _grow_param(producer, pair.producer, "weight", shape, 0.0, replaced)
    _grow_param(producer, pair.producer, "bias", (n + m,), 0.0, replaced)
    if isinstance(producer, nn.Linear):
        producer.out_features = n + m
    else:
        producer.out_channels = n + m

    for name in pair.between:
        bn = get_module(model, name)
        if isinstance(bn, nn.Conv2d):
            _widen_depthwise(bn, name, n, m, replaced)
            continue
        _grow_param(bn, name, "weight", (n + m,), 1.0, replaced)
        _grow_param(bn, name, "bias", (n + m,), 0.0, replaced)
        _grow_buffer(bn, "running_mean", (n + m,), 0.0)
        _grow_buffer(bn, "running_var", (n + m,), 1.0)
        bn.num_features = n + m

    cols = m * pair.spatial
    shape = list(consumer.weight.shape)
    shape[1] += cols
    _grow_param(consumer, pair.consumer, "weight", shape, 0.0, replaced)
    if isinstance(consumer, nn.Linear):
        consumer.in_features += cols
    else:
        consumer.in_channels += cols
    return replaced
