"""Stop a run whose training diverged instead of letting it finish at chance accuracy.

A non-finite loss (checked after every backward pass, before the optimizer applies it) or a
non-finite parameter (checked after every experience, before growth and evaluation read the
weights) raises :class:`~sparsegrow.errors.DivergenceError`. The runner adds the strategy and seed
and marks the run failed; the experiences finished before stay in its checkpoint.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.errors import DivergenceError


def _cause(strategy) -> str:
    group = strategy.optimizer.param_groups[0]
    return (f"likely cause: the learning rate ({type(strategy.optimizer).__name__.lower()}, "
            f"training.lr={group['lr']:g}) or a plugin's loss penalty is too large for this "
            f"model; lower it")


class DivergenceGuard(SupervisedPlugin, supports_distributed=False):
    """Raise :class:`~sparsegrow.errors.DivergenceError` at the first non-finite loss or
    parameter.

    ``supports_distributed`` is False: each process checks its own loss, and one process
    stopping alone would leave the others waiting at the next collective.
    """

    def __init__(self):
        super().__init__()

    def after_backward(self, strategy, **kwargs):
        # One scalar read per iteration: the loss includes every plugin's penalty by now.
        loss = strategy.loss.detach()
        if not bool(torch.isfinite(loss).all()):
            raise DivergenceError(
                f"experience {strategy.clock.train_exp_counter}, iteration "
                f"{strategy.clock.train_exp_iterations} (epoch {strategy.clock.train_exp_epochs}):"
                f" training loss is {loss.item()}; {_cause(strategy)}")

    def after_training_exp(self, strategy, **kwargs):
        for name, param in strategy.model.named_parameters():
            if not bool(torch.isfinite(param).all()):
                raise DivergenceError(
                    f"experience {strategy.clock.train_exp_counter}, after its last iteration "
                    f"{strategy.clock.train_exp_iterations - 1}: parameter {name} is not "
                    f"finite; {_cause(strategy)}")
