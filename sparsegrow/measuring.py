"""The mode in which growth and protection run the model over data for their own measurements
(subspace bases, importance, growth spectra, on-data initialisation, the output layer).

They run the model directly, never through a strategy's evaluation, and in the forward that
training runs, because that is the forward whose layers they measure and protect. Eval mode is
not that forward for every model: Avalanche's ``TrainEvalModel`` (iCaRL) and ``SCRModel`` (SCR)
switch on ``model.training`` to a nearest-class-mean classifier that needs class means the
strategy computes at its own time. Only the modules whose training mode adds noise or updates
state are put in eval mode: normalisation (BatchNorm and the like: running statistics, not
updated) and dropout (including attention's).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch.nn as nn

_QUIET = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd, nn.MultiheadAttention)


def set_measuring_mode(model: nn.Module) -> None:
    """Put ``model`` in its training forward, its noisy and stateful modules in eval mode (the
    caller restores the modes; :func:`measuring` does)."""
    model.train()
    for module in model.modules():
        if isinstance(module, _QUIET):
            module.eval()


@contextmanager
def measuring(model: nn.Module):
    """Run the block with ``model`` in measuring mode; every module's mode is restored
    afterwards."""
    modes = {m: m.training for m in model.modules()}
    set_measuring_mode(model)
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode
