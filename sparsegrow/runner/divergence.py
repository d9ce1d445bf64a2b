"""Stop a run whose training diverged instead of letting it finish at chance accuracy.

Checked after every backward pass, before the optimizer applies it: the loss is not finite, or
it exploded to over ``loss_factor`` times its value at the experience's first iteration (a step
size too large for the model typically sends the loss from ~2 to 1e6 within a few iterations,
then kills every ReLU, and the loss settles back to a finite value while the parameters stay at
~1e20: without this check such a run finishes at chance accuracy). Checked after every
experience, before growth and evaluation read the weights: a parameter is not finite. Either
raises :class:`~sparsegrow.errors.DivergenceError`; the runner adds the strategy and seed and
marks the run failed, and the experiences finished before stay in its checkpoint.
"""

from __future__ import annotations

import math

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.errors import DivergenceError


def _cause(strategy) -> str:
    group = strategy.optimizer.param_groups[0]
    return (f"likely cause: the learning rate ({type(strategy.optimizer).__name__.lower()}, "
            f"training.lr={group['lr']:g}) or a plugin's loss penalty is too large for this "
            f"model; lower it")


class DivergenceGuard(SupervisedPlugin, supports_distributed=False):
    """Raise :class:`~sparsegrow.errors.DivergenceError` at the first non-finite or exploded
    loss, or non-finite parameter.

    ``supports_distributed`` is False: each process checks its own loss, and one process
    stopping alone would leave the others waiting at the next collective.

    :param loss_factor: the loss exploded when it exceeds this many times its value at the
        experience's first iteration (at least 1). The reference is per experience, so that a
        resumed run checks exactly as an uninterrupted one.
    """

    def __init__(self, *, loss_factor: float = 1e4):
        super().__init__()
        self.loss_factor = loss_factor
        self._reference: float | None = None

    def before_training_exp(self, strategy, **kwargs):
        self._reference = None

    def after_backward(self, strategy, **kwargs):
        # one scalar read per iteration; the loss holds every plugin's penalty by now
        loss = strategy.loss.detach().item()
        clock = strategy.clock
        where = (f"experience {clock.train_exp_counter}, iteration {clock.train_exp_iterations} "
                 f"(epoch {clock.train_exp_epochs})")
        if not math.isfinite(loss):
            raise DivergenceError(f"{where}: training loss is {loss}; {_cause(strategy)}")
        if self._reference is None:
            self._reference = max(abs(loss), 1.0)
        elif abs(loss) > self.loss_factor * self._reference:
            raise DivergenceError(
                f"{where}: training loss exploded to {loss:.3g}, over {self.loss_factor:g} × "
                f"its value at the experience's first iteration ({self._reference:.3g}); "
                f"{_cause(strategy)}")

    def after_training_exp(self, strategy, **kwargs):
        for name, param in strategy.model.named_parameters():
            if not bool(torch.isfinite(param).all()):
                raise DivergenceError(
                    f"experience {strategy.clock.train_exp_counter}, after its last iteration "
                    f"{strategy.clock.train_exp_iterations - 1}: parameter {name} is not "
                    f"finite; {_cause(strategy)}")
