"""A module-level graph from ``torch.export`` on an example batch, for forwards torch.fx cannot
trace symbolically.

``torch.export`` (non-strict) runs the forward in Python on fake tensors of the example's shapes,
so shape-dependent Python (``x.view(len(x), -1)``, ``if x.dim() > 2: ...``) is evaluated instead
of traced. Its graph is ATen-level; :func:`export_graph` rewrites it into the vocabulary of
symbolic tracing that :mod:`sparsegrow.growth.graph` walks:

- ``linear``/``conv2d`` whose weight is the ``weight`` of a ``Linear``/``Conv2d`` module, and
  ``batch_norm`` whose weight or running mean belongs to a BatchNorm module, become
  ``call_module`` nodes named after that module (found from the parameter's name in the export
  signature, so shared and inserted modules map exactly);
- per-feature ATen ops become the torch functions the walk knows (``aten.relu`` → ``torch.relu``,
  ``aten.add.Tensor`` → ``operator.add``, ...); copies (``clone``, ``contiguous``) disappear;
- a ``view``/``reshape``/``flatten`` whose output is [batch, all other dimensions] and a
  spatial ``mean`` without ``keepdim`` (global pooling) become ``torch.flatten(x, 1)``, decided
  from the shapes export recorded;
- parameters and buffers become ``get_attr`` nodes, so combining a tensor with one (e.g. a
  positional embedding) is seen as combining it with another tensor;
- every other op stays as it is and is reported by its ATen name.

The model is exported in eval mode (BatchNorm and Dropout as single ops) and put back into each
module's own mode afterwards.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from sparsegrow.growth.layers import LAYER_TYPES

_aten = torch.ops.aten

_FUNCTIONS = {
    _aten.relu: torch.relu, _aten.relu_: torch.relu, _aten.hardtanh: F.hardtanh,
    _aten.hardtanh_: F.hardtanh, _aten.relu6: F.relu6, _aten.leaky_relu: F.leaky_relu,
    _aten.leaky_relu_: F.leaky_relu, _aten.elu: F.elu, _aten.elu_: F.elu, _aten.selu: F.selu,
    _aten.selu_: F.selu, _aten.celu: F.celu, _aten.celu_: F.celu, _aten.gelu: F.gelu,
    _aten.gelu_: F.gelu, _aten.silu: F.silu, _aten.silu_: F.silu, _aten.mish: F.mish,
    _aten.mish_: F.mish, _aten.hardswish: F.hardswish, _aten.hardswish_: F.hardswish,
    _aten.hardsigmoid: F.hardsigmoid, _aten.hardsigmoid_: F.hardsigmoid,
    _aten.softplus: F.softplus, _aten.sigmoid: torch.sigmoid, _aten.sigmoid_: torch.sigmoid,
    _aten.tanh: torch.tanh, _aten.tanh_: torch.tanh,
    _aten.dropout: F.dropout, _aten.dropout_: F.dropout, _aten.feature_dropout: F.dropout2d,
    _aten.feature_dropout_: F.dropout2d, _aten.alpha_dropout: F.alpha_dropout,
    _aten.max_pool1d: F.max_pool1d, _aten.max_pool2d: F.max_pool2d,
    _aten.avg_pool1d: F.avg_pool1d, _aten.avg_pool2d: F.avg_pool2d,
    _aten.adaptive_avg_pool1d: F.adaptive_avg_pool1d,
    _aten.adaptive_avg_pool2d: F.adaptive_avg_pool2d,
    _aten.adaptive_max_pool1d: F.adaptive_max_pool1d,
    _aten.adaptive_max_pool2d: F.adaptive_max_pool2d,
    _aten.add: operator.add, _aten.add_: operator.add, _aten.sub: operator.sub,
    _aten.sub_: operator.sub, _aten.mul: operator.mul, _aten.mul_: operator.mul,
    _aten.div: operator.truediv, _aten.div_: operator.truediv,
    _aten.cat: torch.cat, _aten.concat: torch.cat, _aten.stack: torch.stack,
    _aten.layer_norm: F.layer_norm, _aten.group_norm: F.group_norm,
    _aten.instance_norm: F.instance_norm,
}
_COPIES = {_aten.clone, _aten.contiguous, _aten.alias, _aten.detach, _aten.lift_fresh_copy}
_LAYERS = {_aten.linear, _aten.conv2d, _aten.convolution}
_BATCHNORMS = {_aten.batch_norm, _aten._native_batch_norm_legit_no_training}
_RESHAPES = {_aten.view, _aten.reshape, _aten._unsafe_view, _aten.flatten}


def _packet(node: fx.Node):
    return getattr(node.target, "overloadpacket", None)


def _shape(value) -> tuple[int, ...] | None:
    shape = getattr(getattr(value, "meta", {}).get("val"), "shape", None)
    return None if shape is None else tuple(int(s) for s in shape)


def _flattens(node: fx.Node) -> bool:
    """[batch, d1, d2, ...] → [batch, d1·d2·...], from the shapes export recorded."""
    before, after = _shape(node.args[0]), _shape(node)
    if before is None or after is None or len(after) != 2 or len(before) < 2:
        return False
    return after[0] == before[0] and after[1] == math.prod(before[1:])


def _global_pool(node: fx.Node) -> str | None:
    """'flatten' for a mean over every spatial dimension, 'pool' if it keeps them (as 1s)."""
    shape = _shape(node.args[0])
    if shape is None or len(shape) < 3 or len(node.args) < 2:
        return None
    dims = {d % len(shape) for d in node.args[1]}
    if dims != set(range(2, len(shape))):
        return None
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    return "pool" if keepdim else "flatten"


def _owner(model: nn.Module, name: str | None, types) -> str | None:
    """The module that owns parameter/buffer ``name`` if it is of ``types``."""
    if name is None:
        return None
    owner = name.rpartition(".")[0]
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        return None
    return owner if isinstance(module, types) else None


def export_graph(model: nn.Module, example: torch.Tensor) -> fx.Graph:
    """Export ``model`` on ``example`` and return its graph at module level (see module doc).

    :raises Exception: whatever ``torch.export`` raises for a forward it cannot export.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        program = torch.export.export(model, (example,), strict=False)
    finally:
        for module, training in modes.items():
            module.training = training
    signature = program.graph_signature
    states = {**signature.inputs_to_parameters, **signature.inputs_to_buffers,
              **signature.inputs_to_lifted_tensor_constants}
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}

    def arg(a):
        return fx.node.map_arg(a, lambda n: env[n])

    def state_name(a) -> str | None:
        return states.get(a.name) if isinstance(a, fx.Node) else None

    for node in program.graph.nodes:
        if node.op == "placeholder":
            name = states.get(node.name)
            env[node] = graph.get_attr(name) if name is not None else graph.placeholder(node.name)
            continue
        if node.op == "output":
            graph.output(arg(node.args[0]))
            continue
        packet = _packet(node)
        if packet in _LAYERS:
            weight = state_name(node.args[1])
            owner = _owner(model, weight, LAYER_TYPES)
            if owner is not None and weight == f"{owner}.weight":
                env[node] = graph.call_module(owner, (env[node.args[0]],))
                continue
        if packet in _BATCHNORMS:
            owner = (_owner(model, state_name(node.args[1]), (nn.BatchNorm1d, nn.BatchNorm2d))
                     or _owner(model, state_name(node.args[3]), (nn.BatchNorm1d, nn.BatchNorm2d)))
            if owner is not None:
                env[node] = graph.call_module(owner, (env[node.args[0]],))
                continue
        if packet in _COPIES:
            env[node] = env[node.args[0]]
            continue
        if packet in _RESHAPES and _flattens(node):
            env[node] = graph.call_function(torch.flatten, (env[node.args[0]], 1))
            continue
        if packet is _aten.mean and (pool := _global_pool(node)) is not None:
            target = torch.flatten if pool == "flatten" else F.adaptive_avg_pool2d
            env[node] = graph.call_function(target, (env[node.args[0]], 1))
            continue
        target = _FUNCTIONS.get(packet, node.target)
        env[node] = graph.call_function(target, arg(node.args), arg(node.kwargs))
    return graph
