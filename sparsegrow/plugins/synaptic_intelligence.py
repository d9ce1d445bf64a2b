"""Avalanche 0.6's Synaptic Intelligence with its CPU aliasing fixed.

``SynapticIntelligencePlugin.extract_weights`` stores ``param.detach().cpu().flatten()``. On a
GPU ``.cpu()`` copies; on the CPU it is a no-op and ``flatten()`` of a contiguous tensor is a
*view of the parameter itself*. The weights SI keeps as "before this step" and as "the anchor of
this experience" then move with the model: every Δθ is zero, so every importance is zero, and
the penalty's anchor always equals the current weights, so the penalty is zero too. SI silently
trains as Naive on the CPU (checked: identical accuracy matrices for si_lambda 1, 10 and 100).

This subclass runs the same algorithm on copies: after Avalanche's own callback has taken the
snapshots, it replaces them by clones of themselves, before the parameters change.

A second difference: Avalanche clips each importance from above (at 0.001) but not from below.
With momentum a parameter's path integral can be positive (its updates went uphill on average),
which gives a negative importance of any size (it is divided by Δθ² + 1e-7): the "penalty" then
rewards moving that parameter without bound, and training diverged on Permuted MNIST (ACC
9.9%, LA 26% for si_lambda 10, 100 and 1000 on the validation split). Importances are therefore
clamped at 0 as well, so the quadratic term stays a penalty.
"""

from __future__ import annotations

import torch
from avalanche.training.plugins import SynapticIntelligencePlugin as _AvalancheSI


def _own_copies(snapshots: dict) -> None:
    with torch.no_grad():
        for snapshot in snapshots.values():
            snapshot.data = snapshot.data.clone()


class SynapticIntelligencePlugin(_AvalancheSI):
    """Synaptic Intelligence (Zenke et al. 2017), Avalanche's implementation, correct on the CPU.

    Same parameters as :class:`avalanche.training.plugins.SynapticIntelligencePlugin`.
    """

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        _own_copies(self.ewc_data[0])            # the penalty's anchor for this experience

    def before_training_iteration(self, strategy, **kwargs):
        super().before_training_iteration(strategy, **kwargs)
        _own_copies(self.syn_data["old_theta"])  # θ before this step, for the path integral

    def after_training_exp(self, strategy, **kwargs):
        super().after_training_exp(strategy, **kwargs)
        with torch.no_grad():
            for importance in self.ewc_data[1].values():
                importance.data.clamp_(min=0.0)
