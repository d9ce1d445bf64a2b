"""The runner's divergence guard: the library's (:mod:`sparsegrow.divergence`), whose advice
names the runner's config key of the learning rate.

The runner adds it as the first plugin, so it leads: the plugins' own guards hand their checks
to it. It raises :class:`~sparsegrow.errors.DivergenceError`; the runner adds the strategy and
seed and marks the run failed, and the experiences finished before stay in its checkpoint.
"""

from __future__ import annotations

from sparsegrow import divergence


class DivergenceGuard(divergence.DivergenceGuard):
    """:class:`sparsegrow.divergence.DivergenceGuard` advising on ``training.lr``."""

    lr_key = "training.lr"
