"""Keep one optimizer object across growth, so LR schedulers and strategies that hold it work on.

Growth replaces Parameters by bigger ones (new units appended at the end of each dimension). The
optimizer must then hold the new Parameter in the same place of the same group, and its state
(SGD ``momentum_buffer``, Adam/AdamW ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, any other
per-entry tensor) must be the old state for the old slice and zero for the new entries; scalar
entries such as Adam's ``step`` are kept as they are.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sparsegrow.growth.surgery import Replaced, pad_to


def replace_parameters(optimizer: torch.optim.Optimizer, replaced: Replaced) -> None:
    """Swap old for new Parameters in ``optimizer`` in place and zero-pad their state.

    :param optimizer: the optimizer to update (its object identity is kept).
    :param replaced: {name: (old Parameter, new Parameter)} as returned by a growth operation.
        Parameters the optimizer does not hold are ignored.
    """
    for old, new in replaced.values():
        for group in optimizer.param_groups:
            params = group["params"]
            for i, p in enumerate(params):
                if p is old:
                    params[i] = new
        state = optimizer.state.pop(old, None)
        if state:
            optimizer.state[new] = {
                key: pad_to(value, new.shape, 0) if torch.is_tensor(value)
                and value.shape == old.shape else value
                for key, value in state.items()
            }


def add_parameters(optimizer: torch.optim.Optimizer, params, *, like: torch.Tensor) -> None:
    """Add new Parameters to the group holding ``like`` (the first group if none does).

    New parameters start with empty state, which every torch optimizer fills with zeros at its
    first step.
    """
    group = next((g for g in optimizer.param_groups if any(p is like for p in g["params"])),
                 optimizer.param_groups[0])
    group["params"].extend(params)


def held_parameters(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, nn.Parameter]:
    """{name: Parameter} of the model's parameters that ``optimizer`` holds, after growth.

    Code that keeps its own name → Parameter map of the optimizer (Avalanche strategies keep
    ``optimized_param_id`` and look old objects up by identity in ``make_optimizer``) must refresh
    it with this after growth; otherwise the replaced Parameters look new to it and are added a
    second time with empty state.
    """
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return {name: p for name, p in model.named_parameters() if id(p) in held}
