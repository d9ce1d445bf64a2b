"""Thresholds that keep new units quiet on old inputs.

A new unit isolated from the old inputs (its incoming row orthogonal to the producer's input
basis) still responds to the part of an old input that the basis does not span (1 − ``energy``
of its energy). Through ReLU that response reaches the unit's outgoing weights, which its
consumer's protection never saw, so training them moves old predictions: on Permuted MNIST 50
this accounts for most of growth's extra forgetting (RESULTS.md table 7, "later units
silenced"). Lowering the unit's threshold below that residual response silences it there,
while inputs of the current experience, which have far more energy outside the old basis,
still drive it.

The threshold is set from the unit's response on the current experience's recent inputs: the
unit is first turned (row and bias negated, which changes nothing while its outgoing weights
are zero) so that it responds positively on average, then its bias is lowered by ``margin``
standard deviations of that response.
"""

from __future__ import annotations

import torch


def quiet_offsets(responses: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Signs and bias offsets that quiet new units.

    :param responses: [N, m] pre-activations of the m new units on N current inputs (a conv's
        positions counted as inputs).
    :param margin: threshold in standard deviations of each unit's response (≥ 0).
    :return: (sign [m] of ±1 to multiply each unit's row and bias by, offset [m] to add to its
        bias after that): the turned unit's mean response is |mean|, its threshold
        ``margin``·std below the old one.
    """
    if margin < 0:
        raise ValueError(f"quiet margin must be ≥ 0, got {margin}")
    mean = responses.mean(0)
    sign = torch.where(mean < 0, -1.0, 1.0).to(responses.dtype)
    std = responses.std(0, unbiased=False) if responses.shape[0] > 1 else torch.zeros_like(mean)
    return sign, -margin * std
