"""``sparsegrow inspect <model>``: which layers of a model grow and how each one is protected,
so a user can check a model before training it.

A model is named as the project's models are (``small_cnn``), as a torchvision builder
(``torchvision:mobilenet_v2``, built with ``weights=None``) or as ``package.module:callable``
(the user's own class or factory), with ``key=value`` keyword arguments. The analysis is the
growth engine's own (:class:`sparsegrow.growth.Grower` with an example batch of the given input
shape), and the protection column says what :class:`sparsegrow.plugins.FreezingPlugin` does
with ``gating="subspace"``: which layers get input-subspace bases (one per group for grouped
convolutions), which parameters fall back to importance masks, and which follow the
``batchnorm`` option.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn
import yaml

from sparsegrow.errors import ConfigError
from sparsegrow.growth import Grower
from sparsegrow.growth.layers import LAYER_TYPES, width
from sparsegrow.protection.batchnorm import batchnorms

# The architectures of the README's table: (model, keyword arguments, input shape)
ZOO = {
    "resnet18": ("torchvision:resnet18", {}, (3, 32, 32)),
    "vgg11_bn": ("torchvision:vgg11_bn", {}, (3, 32, 32)),
    "mobilenet_v2": ("torchvision:mobilenet_v2", {}, (3, 32, 32)),
    "shufflenet_v2_x0_5": ("torchvision:shufflenet_v2_x0_5", {}, (3, 32, 32)),
    "efficientnet_b0": ("torchvision:efficientnet_b0", {}, (3, 32, 32)),
    "vit (2 layers, width 16)": (
        "torchvision.models.vision_transformer:VisionTransformer",
        dict(image_size=16, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32),
        (3, 16, 16)),
    "small_cnn": ("small_cnn", {}, (1, 28, 28)),
    "resnet18_reduced": ("resnet18_reduced", {}, (3, 32, 32)),
}


def parse_options(items: list[str]) -> dict:
    """``["width=2", "dropout=0.1"]`` → ``{"width": 2, "dropout": 0.1}`` (values read as YAML)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"model option '{item}' is not key=value")
        options[key] = yaml.safe_load(value)
    return options


def load_model(spec: str, *, input_shape, n_classes: int = 10, **options) -> nn.Module:
    """Build the model named by ``spec`` (see the module doc) with ``options``."""
    from sparsegrow.models import MODELS, build_model

    if spec in MODELS:
        return build_model(spec, input_shape=input_shape, n_classes=n_classes, **options)
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ConfigError(f"unknown model '{spec}': give one of {', '.join(MODELS)}, "
                          "torchvision:<name> or package.module:callable")
    try:
        if module_name == "torchvision":
            from torchvision.models import get_model

            return get_model(attr, weights=None, num_classes=n_classes, **options)
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as err:
        raise ConfigError(f"cannot build model '{spec}': {err}") from None
    try:
        accepts = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts = {}
    if "num_classes" in accepts or any(p.kind is p.VAR_KEYWORD for p in accepts.values()):
        options = {"num_classes": n_classes, **options}
    return factory(**options)


@dataclass(frozen=True)
class LayerRow:
    """One module with parameters of its own: how it grows and how it is protected."""

    name: str
    kind: str
    width: int | None
    growth: str
    protection: str


def _ran_forward(model: nn.Module, example: torch.Tensor) -> set[str]:
    """Names of the Linear/Conv2d modules whose own forward runs (their inputs are hooked)."""
    ran: set[str] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, args, n=n: ran.add(n))
             for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return ran


def inspect_model(model: nn.Module, example: torch.Tensor) -> list[LayerRow]:
    """A :class:`LayerRow` for every module that holds parameters itself, in module order."""
    report = Grower(model, example=example).report
    ran = _ran_forward(model, example)
    producers = {p.producer: p for p in report.pairs}
    between = {b: p.producer for p in report.pairs for b in p.between}
    consumers = {p.consumer: p.producer for p in report.pairs}
    norms = batchnorms(model)
    rows = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        size = width(module) if isinstance(module, LAYER_TYPES) else None
        if name in producers:
            growth = f"widens (consumer '{producers[name].consumer}')"
        elif name in between:
            growth = f"widens with '{between[name]}'"
        elif isinstance(module, LAYER_TYPES):
            growth = f"no: {report.rejected.get(name, 'not analysed')}"
        else:
            growth = "-"
        if name in consumers:
            growth += f"; gains inputs when '{consumers[name]}' widens"
        if isinstance(module, LAYER_TYPES) and name in ran:
            groups = getattr(module, "groups", 1)
            protection = "subspace" if groups == 1 else f"subspace, one basis per group ({groups})"
        elif isinstance(module, LAYER_TYPES):
            protection = ("importance masks: its forward never runs (its weight is used "
                          "directly)")
        elif name in norms:
            protection = "the batchnorm option (free / freeze / cumulative)"
        else:
            protection = "importance masks (not a Linear/Conv2d)"
        kind = type(module).__name__
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            kind += f" (groups={module.groups})"
        rows.append(LayerRow(name or "(model)", kind, size, growth, protection))
    return rows


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def layer_table(rows: list[LayerRow]) -> str:
    """Markdown table of :func:`inspect_model`'s rows."""
    lines = ["| layer | type | width | growth | protection (gating subspace) |",
             "|---|---|---:|---|---|"]
    lines += [f"| {_cell(r.name)} | {_cell(r.kind)} | {'' if r.width is None else r.width} | "
              f"{_cell(r.growth)} | {_cell(r.protection)} |" for r in rows]
    return "\n".join(lines)


def summary(rows: list[LayerRow]) -> dict[str, int]:
    """Counts for one model: layers, growable ones, what each protection covers."""
    layers = [r for r in rows if r.width is not None]
    return {"Linear/Conv2d layers": len(layers),
            "producers that widen": sum(r.growth.startswith("widens (") for r in layers),
            "BatchNorm/depthwise widened along": sum(r.growth.startswith("widens with")
                                                     for r in rows),
            "subspace-protected": sum(r.protection.startswith("subspace") for r in rows),
            "modules on importance masks": sum(r.protection.startswith("importance masks")
                                               for r in rows),
            "BatchNorms (option)": sum(r.protection.startswith("the batchnorm option")
                                       for r in rows)}


def zoo_table() -> str:
    """Markdown summary of :data:`ZOO` (the README's architecture table)."""
    header = None
    lines = []
    for label, (spec, options, shape) in ZOO.items():
        torch.manual_seed(0)
        model = load_model(spec, input_shape=shape, **options)
        counts = summary(inspect_model(model, torch.randn(2, *shape)))
        if header is None:
            header = ["| model | " + " | ".join(counts) + " |",
                      "|---|" + "---:|" * len(counts)]
        lines.append(f"| {label} | " + " | ".join(str(v) for v in counts.values()) + " |")
    return "\n".join(header + lines)
