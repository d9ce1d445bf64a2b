"""Continual-learning metrics from an accuracy matrix (METHOD.md, "What to measure").

``R[i][j]`` = test accuracy on experience j after training experience i (fractions). Pure
functions on lists; a metric that needs more rows than a run has (joint training reports only
its final row) is ``None``.
"""

from __future__ import annotations

import math
from statistics import mean, stdev


def final_accuracy(R: list[list[float]]) -> float:
    """ACC: mean over j of R[T][j]."""
    return mean(R[-1])


def _square(R) -> bool:
    return len(R) == len(R[-1]) and len(R) > 1


def backward_transfer(R: list[list[float]]) -> float | None:
    """BWT: mean over j < T of R[T][j] − R[j][j] (negative = forgetting)."""
    if not _square(R):
        return None
    T = len(R) - 1
    return mean(R[T][j] - R[j][j] for j in range(T))


def forgetting(R: list[list[float]]) -> float | None:
    """Forgetting: mean over j < T of max over l < T of R[l][j] − R[T][j]."""
    if not _square(R):
        return None
    T = len(R) - 1
    return mean(max(R[k][j] for k in range(T)) - R[T][j] for j in range(T))


def learning_accuracy(R: list[list[float]]) -> float | None:
    """LA (adaptability): mean over j of R[j][j]."""
    if len(R) != len(R[-1]):
        return None
    return mean(R[j][j] for j in range(len(R)))


def seen_accuracy(row: list[float], trained: int) -> float:
    """Average accuracy on experiences 0..``trained`` (those seen after training ``trained``)."""
    return mean(row[: trained + 1])


def seen_average(R: list[list[float]]) -> list[float]:
    """:func:`seen_accuracy` after each experience; joint training's single final row is its
    average over all experiences."""
    if len(R) != len(R[-1]):
        return [mean(row) for row in R]
    return [seen_accuracy(R[i], i) for i in range(len(R))]


def after_each_experience(R: list[list[float]]) -> list[dict]:
    """ACC, BWT, Forgetting and LA of the stream's first k experiences, for k = 1..T (the
    leading k×k block of R: a long stream's results after 10, 20, ... experiences)."""
    if len(R) != len(R[-1]):
        return []
    out = []
    for k in range(1, len(R) + 1):
        block = [row[:k] for row in R[:k]]
        out.append({"experiences": k, "acc": final_accuracy(block),
                    "bwt": backward_transfer(block), "forgetting": forgetting(block),
                    "la": learning_accuracy(block)})
    return out


def parameter_overhead(start: int, end: int) -> float:
    """(parameters at end − parameters at start) / parameters at start."""
    return (end - start) / start


def gift_at_growth(values: list[float]) -> float | None:
    """Mean GIFt over the growth events of a run (None without growth events)."""
    return mean(values) if values else None


def mean_std(values: list) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the non-None values (std 0 for one value)."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None, None
    return mean(values), (stdev(values) if len(values) > 1 else 0.0)
