"""Find the expandable producer→consumer pairs of an ordinary ``nn.Module`` with torch.fx.

A pair is a ``Linear``/``Conv2d`` producer P whose output reaches exactly one ``Linear``/``Conv2d``
consumer C only through per-feature or elementwise operations (activations, BatchNorm1d/2d,
Dropout, pooling, a Flatten from conv to linear). Widening P by m units then needs m rows in P,
m channels in every BatchNorm between, and m (or m·H·W after a Flatten) input columns in C, and
nothing else. Every other ``Linear``/``Conv2d`` is listed in ``GraphReport.rejected`` with the
reason, so a user learns *which* layer cannot grow and *why*.

Decisions:

- Modules whose forward torch.fx cannot trace (Python on shapes such as ``len(x)`` or
  ``if x.dim() > 2``, data-dependent control flow, third-party code) are traced as opaque leaves:
  the tracer retries with the innermost failing module made a leaf. When the model's own forward
  cannot be traced, or a ``Linear``/``Conv2d`` is hidden inside such a leaf, and an example batch
  is given, the graph comes from ``torch.export`` on that batch instead
  (:mod:`sparsegrow.growth.export_graph`), which evaluates Python on shapes. Whatever export
  cannot take either (control flow on tensor *values*) keeps the fx result: a layer inside an
  opaque leaf is rejected with the tracing error.
- Depthwise convolutions (``groups == in_channels == out_channels``) are per-channel
  operations: they may lie between P and C and are widened with P (one new group per new unit).
- A spatial mean without ``keepdim`` (``x.mean([2, 3])``) is global pooling plus a flatten.
- ``spatial`` (the H·W input columns of C per channel of P after a Flatten) is derived from the
  layer sizes, ``C.in_features // P.out_channels``. This is exact because only per-channel
  operations may lie between P and C, so no example input is needed to analyse a model.
- Modules that growth operations insert (:mod:`sparsegrow.growth.deepen`) run from a forward hook
  of the layer they follow; the tracer puts them in the graph so that analysis after a
  ``deepen``/``branch`` sees the real computation.
"""

from __future__ import annotations

import builtins
import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from sparsegrow.errors import GrowthError
from sparsegrow.growth.deepen import inserted_modules
from sparsegrow.growth.export_graph import export_graph
from sparsegrow.growth.layers import LAYER_TYPES, width as _width


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
# Per-feature or elementwise modules: output feature i depends only on input feature i.
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)
_CROSS_FEATURE_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                        nn.LocalResponseNorm)
_PASS_FUNCTIONS = {
    F.relu, torch.relu, F.relu_, torch.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu,
    F.gelu, F.silu, F.mish, F.hardtanh, F.hardswish, F.hardsigmoid, F.softplus,
    torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
    F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
}
_PASS_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "contiguous"}
_ARITHMETIC = {operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub,
               operator.mul, operator.imul, torch.mul, operator.truediv, operator.itruediv,
               torch.div}
_ADDITIONS = {operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub}
_CONCATENATIONS = {torch.cat, torch.concat, torch.stack, torch.hstack, torch.vstack}
_METADATA_METHODS = {"size", "dim"}


def is_depthwise(module: nn.Module) -> bool:
    """A Conv2d with one input and one output channel per group: a per-channel operation."""
    return (isinstance(module, nn.Conv2d) and module.groups > 1
            and module.groups == module.in_channels == module.out_channels)


@dataclass(frozen=True)
class ExpandablePair:
    """A producer P that can be widened together with its single consumer C.

    :param producer: qualified name of P (``Linear`` or ``Conv2d``).
    :param consumer: qualified name of C (``Linear`` or ``Conv2d``).
    :param between: qualified names of the per-feature modules with state to widen (BatchNorm,
        depthwise Conv2d), in graph order.
    :param spatial: input columns of C per output feature of P (H·W after a conv→Flatten→Linear,
        else 1).
    """

    producer: str
    consumer: str
    between: tuple[str, ...] = ()
    spatial: int = 1


@dataclass
class GraphReport:
    """Result of :func:`analyse`.

    :param pairs: expandable pairs in graph order.
    :param rejected: every other ``Linear``/``Conv2d`` module name → why it cannot be widened.
    :param layers: names of all ``Linear``/``Conv2d`` modules in graph (call) order.
    """

    pairs: list[ExpandablePair]
    rejected: dict[str, str]
    layers: list[str] = field(default_factory=list)

    def pair(self, producer: str) -> ExpandablePair:
        """The pair whose producer is ``producer``, or a :class:`GrowthError` saying why not."""
        for p in self.pairs:
            if p.producer == producer:
                return p
        if producer in self.rejected:
            raise GrowthError(f"cannot widen layer '{producer}': {self.rejected[producer]}")
        raise GrowthError(f"cannot widen layer '{producer}': the model has no Linear or Conv2d "
                          "module of that name")


class _Tracer(fx.Tracer):
    """fx tracer that treats the modules in ``leaves`` as opaque and traces inserted modules."""

    def __init__(self, leaves: set[int]):
        super().__init__()
        self.leaves = leaves
        self.failed: tuple[str, nn.Module, Exception] | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        try:
            out = super().call_module(m, forward, args, kwargs)
        except Exception as error:
            # The innermost module sees the error first: that is the one to make a leaf.
            if self.failed is None:
                self.failed = (self.path_of_module(m), m, error)
            raise
        for kind, extra in inserted_modules(m):
            if kind == "deepen":
                out = self.call_module(extra, extra.forward, (out,), {})
            else:
                out = out + self.call_module(extra, extra.forward, args[:1], {})
        return out


def trace(model: nn.Module) -> tuple[fx.Graph, dict[str, str]]:
    """Trace ``model``; return the graph and {opaque leaf module name: its tracing error}."""
    leaves: set[int] = set()
    opaque: dict[str, str] = {}
    while True:
        tracer = _Tracer(leaves)
        try:
            return tracer.trace(model), opaque
        except Exception as error:
            failed = tracer.failed
            if failed is None or failed[0] == "" or id(failed[1]) in leaves:
                raise GrowthError(
                    f"cannot analyse model {type(model).__name__}: torch.fx cannot trace its "
                    f"forward ({type(error).__name__}: {error})") from None
            name, module, inner = failed
            leaves.add(id(module))
            opaque[name] = f"{type(inner).__name__}: {inner}"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _layers_inside(model: nn.Module, opaque: dict[str, str]) -> bool:
    return any(isinstance(m, LAYER_TYPES) and any(n.startswith(leaf + ".") for leaf in opaque)
               for n, m in model.named_modules())


def module_graph(model: nn.Module, example: torch.Tensor | None = None
                 ) -> tuple[fx.Graph, dict[str, str]]:
    """The graph to analyse: torch.fx, else torch.export on ``example`` (see the module doc).

    :return: the graph and {opaque leaf module name: its tracing error}.
    """
    try:
        graph, opaque = trace(model)
    except GrowthError as error:
        if example is None:
            raise GrowthError(f"{error}; give an example batch (Grower(model, example=x)) to "
                              "analyse it with torch.export") from None
        try:
            return export_graph(model, example), {}
        except Exception as failure:
            raise GrowthError(f"{error}, and torch.export cannot export it on the example batch "
                              f"({_first_line(failure)})") from None
    if example is not None and _layers_inside(model, opaque):
        try:
            return export_graph(model, example), {}
        except Exception:  # export cannot take it either: the fx graph with its leaves stays
            pass
    return graph, opaque


def _is_metadata(node: fx.Node) -> bool:
    """Users that read a tensor's shape (``x.size(0)``, ``x.shape``), not its values."""
    if node.op == "call_method" and node.target in _METADATA_METHODS:
        return True
    return node.op == "call_function" and node.target is builtins.getattr


def _heads(graph: fx.Graph, modules: dict[str, nn.Module]) -> set[str]:
    """Layers whose output reaches the model output without passing another Linear/Conv2d."""
    heads, stack, seen = set(), [n for n in graph.nodes if n.op == "output"], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op == "call_module" and isinstance(modules.get(node.target), LAYER_TYPES):
            heads.add(node.target)
            continue
        stack.extend(node.all_input_nodes)
    return heads


def _describe(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"'{node.target}'"
    target = getattr(node.target, "__name__", str(node.target))
    return f"{target} (node '{node.name}')"


def _is_flatten(node: fx.Node) -> bool:
    """Whether ``node`` flattens its input to [batch, features]."""
    args = list(node.args)
    if node.op == "call_function" and node.target is torch.flatten:
        start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
        end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
        return (start, end) == (1, -1)
    if node.op == "call_method" and node.target == "flatten":
        start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
        end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
        return (start, end) == (1, -1)
    if node.op in ("call_method", "call_function") and node.target in ("mean", torch.mean):
        # x.mean([2, 3]): global average pooling straight to [batch, channels]
        dims = args[1] if len(args) > 1 else node.kwargs.get("dim")
        keepdim = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
        return (isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]
                and not keepdim)
    if node.op == "call_method" and node.target in ("view", "reshape"):
        shape = args[1:]
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = list(shape[0])
        # x.view(x.size(0), -1): the first dimension is the batch by convention.
        return len(shape) == 2 and shape[1] == -1
    return False


class _Walk:
    """Follow one producer's output forward until its consumer, or a reason why not."""

    def __init__(self, modules, counts):
        self.modules = modules
        self.counts = counts

    def _once(self, name: str) -> str | None:
        if self.counts.get(name, 0) > 1:
            return f"module '{name}' is called {self.counts[name]} times (shared weights)"
        return None

    def follow(self, start: fx.Node) -> ExpandablePair | str:
        producer = self.modules[start.target]
        is_conv = isinstance(producer, nn.Conv2d)
        if is_depthwise(producer):
            return (f"depthwise convolution (groups={producer.groups}): it is widened together "
                    "with the layer whose output it filters")
        if is_conv and producer.groups != 1:
            return f"grouped convolution (groups={producer.groups})"
        reason = self._once(start.target)
        if reason:
            return reason
        between: list[str] = []
        flattened = False
        cur = start
        while True:
            users = [u for u in cur.users if not _is_metadata(u)]
            if not users:
                return "its output is not used"
            if len(users) > 1:
                names = ", ".join(_describe(u) for u in users)
                return f"its output feeds {len(users)} operations ({names}): more than one consumer"
            node = users[0]
            if node.op == "output":
                return "its output is part of the model output"
            if node.op == "call_module":
                mod = self.modules[node.target]
                if is_depthwise(mod) and not flattened:
                    reason = self._once(node.target)
                    if reason:
                        return reason
                    between.append(node.target)
                elif isinstance(mod, LAYER_TYPES):
                    return self._consumer(start.target, producer, node.target, mod, between,
                                          flattened)
                elif isinstance(mod, _BATCHNORMS):
                    reason = self._once(node.target)
                    if reason:
                        return reason
                    between.append(node.target)
                elif isinstance(mod, _CROSS_FEATURE_NORMS):
                    return (f"{type(mod).__name__} '{node.target}' on the path normalises across "
                            "features, so new units would change the old ones")
                elif isinstance(mod, nn.Flatten):
                    if (mod.start_dim, mod.end_dim) != (1, -1):
                        return f"Flatten '{node.target}' does not flatten to [batch, features]"
                    flattened = is_conv
                elif not isinstance(mod, _PASS_MODULES):
                    return f"unsupported module {type(mod).__name__} '{node.target}' on the path"
            elif _is_flatten(node):
                flattened = is_conv
            else:
                reason = self._function(node, cur)
                if reason:
                    return reason
            cur = node

    def _function(self, node: fx.Node, cur: fx.Node) -> str | None:
        """Why the function/method ``node`` applied to ``cur`` blocks the path, or None."""
        others = [a for a in node.all_input_nodes if a is not cur and not _is_metadata(a)]
        if node.op == "call_function" and node.target in _CONCATENATIONS:
            return f"concatenation {_describe(node)} on the path"
        if node.op == "call_function" and node.target in (F.layer_norm, F.group_norm,
                                                          F.instance_norm):
            return f"{_describe(node)} on the path normalises across features"
        if node.op == "call_function" and node.target in _ARITHMETIC:
            if not others:
                return None  # arithmetic with a constant is elementwise
            if node.target in _ADDITIONS:
                return f"residual add on the path: {_describe(node)} sums it with another tensor"
            return f"{_describe(node)} combines it with another tensor"
        if others:
            return f"{_describe(node)} combines it with another tensor"
        if node.op == "call_function" and node.target in _PASS_FUNCTIONS:
            return None
        if node.op == "call_method" and node.target in _PASS_METHODS:
            return None
        return f"unsupported operation {_describe(node)} on the path"

    def _consumer(self, pname, producer, cname, consumer, between, flattened):
        reason = self._once(cname)
        if reason:
            return reason
        width = _width(producer)
        if isinstance(consumer, nn.Conv2d):
            if not isinstance(producer, nn.Conv2d) or flattened:
                return f"its output is reshaped before Conv2d '{cname}'"
            if consumer.groups != 1:
                return f"consumer '{cname}' is a grouped convolution (groups={consumer.groups})"
            if consumer.in_channels != width:
                return f"consumer '{cname}' expects {consumer.in_channels} channels, not {width}"
            return ExpandablePair(pname, cname, tuple(between), 1)
        if isinstance(producer, nn.Conv2d) and not flattened:
            return f"its output reaches Linear '{cname}' without a Flatten"
        if consumer.in_features % width:
            return (f"consumer '{cname}' has {consumer.in_features} inputs, not a multiple of "
                    f"the {width} features of '{pname}'")
        return ExpandablePair(pname, cname, tuple(between), consumer.in_features // width)


def analyse(model: nn.Module, example: torch.Tensor | None = None) -> GraphReport:
    """Find the expandable pairs of ``model`` and why every other Linear/Conv2d is not one.

    :param model: any ``nn.Module`` whose forward takes one tensor.
    :param example: an input batch, used only when torch.fx cannot trace the forward (or a
        layer inside it): the graph then comes from ``torch.export`` on it.
    :return: a :class:`GraphReport`.
    :raises GrowthError: if the model's own forward can be neither traced nor exported.
    """
    graph, opaque = module_graph(model, example)
    modules = dict(model.named_modules())
    calls = [n for n in graph.nodes if n.op == "call_module"]
    counts: dict[str, int] = {}
    for n in calls:
        counts[n.target] = counts.get(n.target, 0) + 1
    heads = _heads(graph, modules)
    walk = _Walk(modules, counts)

    pairs: list[ExpandablePair] = []
    rejected: dict[str, str] = {}
    layers: list[str] = []
    for node in calls:
        if not isinstance(modules[node.target], LAYER_TYPES) or node.target in layers:
            continue
        layers.append(node.target)
        if node.target in heads:
            rejected[node.target] = ("it is the output head (its output reaches the model output "
                                     "with no Linear/Conv2d after it); the head is not widened")
            continue
        result = walk.follow(node)
        if isinstance(result, ExpandablePair):
            pairs.append(result)
        else:
            rejected[node.target] = result

    for name, mod in modules.items():
        if isinstance(mod, LAYER_TYPES) and name not in layers:
            owner = next((leaf for leaf in opaque if name.startswith(leaf + ".")), None)
            rejected[name] = (f"it is inside '{owner}', whose forward torch.fx cannot trace "
                              f"({opaque[owner]})" if owner is not None
                              else "it is not called in the model's forward")
    return GraphReport(pairs=pairs, rejected=rejected, layers=layers)
