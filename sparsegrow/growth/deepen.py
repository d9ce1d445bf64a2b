"""Growth that changes the function by construction: insert a hidden layer, add a summed branch.

Both operations keep every existing parameter name: the new module is registered as a child of
the layer it follows (``<layer>.deepen_<k>`` or ``<layer>.branch_<k>``) and run from a forward
hook of that layer, so masks, scores and optimizer bookkeeping keyed by name stay valid. The
hook is a module-level function that reads the layer's children, so ``copy.deepcopy`` and
``state_dict`` of the model work; the torch.fx analysis (:mod:`sparsegrow.growth.graph`) puts the
inserted modules into the graph. Extras of one layer run in insertion order:
``deepen`` maps the running output y to extra(y); ``branch`` maps it to y + extra(x).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError
from sparsegrow.growth.layers import default_uniform, get_layer, width

_KINDS = ("deepen", "branch")
_FLAG = "_sparsegrow_inserted"


def inserted_modules(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (kind, module) pairs that growth inserted after ``module``, in insertion order."""
    if not getattr(module, _FLAG, False):
        return []
    return [(name.split("_")[0], child) for name, child in module.named_children()
            if name.split("_")[0] in _KINDS]


def _run_inserted(module, args, output):
    for kind, extra in inserted_modules(module):
        output = extra(output) if kind == "deepen" else output + extra(args[0])
    return output


def _attach(layer: nn.Module, kind: str, extra: nn.Module) -> str:
    if not getattr(layer, _FLAG, False):
        layer.register_forward_hook(_run_inserted)
        setattr(layer, _FLAG, True)
    name = f"{kind}_{len(inserted_modules(layer))}"
    layer.add_module(name, extra)
    return name


def _randomise(layer: nn.Linear | nn.Conv2d, generator) -> None:
    fan_in = layer.weight[0].numel()
    with torch.no_grad():
        layer.weight.copy_(default_uniform(layer.weight.shape, fan_in, layer.weight, generator))
        if layer.bias is not None:
            layer.bias.copy_(default_uniform(layer.bias.shape, fan_in, layer.bias, generator))


def insert_layer(model: nn.Module, after: str, *, init: str = "random",
                 generator: torch.Generator | None = None) -> list[str]:
    """Insert a hidden layer (``Linear(n, n)`` or 3×3 ``Conv2d(n, n)``, same padding) + ReLU.

    The new layer reads the output of ``after`` (before whatever activation follows it).

    :param model: the model to change in place.
    :param after: name of the Linear/Conv2d layer whose output the new layer transforms.
    :param init: ``"random"`` (PyTorch's default scale) or ``"identity"`` (identity weights, zero
        bias). Identity is exactly function preserving when the output of ``after`` goes straight
        into a ReLU (ReLU∘ReLU = ReLU); with a BatchNorm or another non-ReLU operation in
        between, the inserted ReLU clips negative values and the function changes.
    :param generator: random generator for ``"random"``.
    :return: names of the new parameters.
    """
    layer = get_layer(model, after)
    n = width(layer)
    if isinstance(layer, nn.Linear):
        new = nn.Linear(n, n, device=layer.weight.device, dtype=layer.weight.dtype)
    else:
        new = nn.Conv2d(n, n, 3, padding=1, device=layer.weight.device, dtype=layer.weight.dtype)
    if init == "identity":
        with torch.no_grad():
            new.weight.zero_()
            eye = torch.eye(n, device=new.weight.device, dtype=new.weight.dtype)
            if isinstance(new, nn.Linear):
                new.weight.copy_(eye)
            else:
                new.weight[:, :, 1, 1] = eye
            new.bias.zero_()
    elif init == "random":
        _randomise(new, generator)
    else:
        raise GrowthError(f"cannot deepen after '{after}': unknown init '{init}' "
                          "(choose random or identity)")
    extra = nn.Sequential(new, nn.ReLU()).train(layer.training)
    name = _attach(layer, "deepen", extra)
    return [f"{after}.{name}.0.{p}" for p, _ in new.named_parameters()]


def add_branch(model: nn.Module, layer_name: str, *,
               generator: torch.Generator | None = None) -> list[str]:
    """Add a parallel branch of the same shape as ``layer_name``, summed into its output.

    The branch (a randomly initialised copy-shaped Linear/Conv2d) changes the function by design:
    the growth-strategy study measures how much that forgets.

    :param model: the model to change in place.
    :param layer_name: the Linear/Conv2d whose output receives the branch.
    :param generator: random generator.
    :return: names of the new parameters.
    """
    layer = get_layer(model, layer_name)
    kwargs = dict(bias=layer.bias is not None, device=layer.weight.device,
                  dtype=layer.weight.dtype)
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, layer.out_features, **kwargs)
    else:
        new = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                        stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                        groups=layer.groups, padding_mode=layer.padding_mode, **kwargs)
    _randomise(new, generator)
    new.train(layer.training)
    name = _attach(layer, "branch", new)
    return [f"{layer_name}.{name}.{p}" for p, _ in new.named_parameters()]
