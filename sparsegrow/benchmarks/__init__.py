"""Task-agnostic continual-learning streams, built offline, as Avalanche benchmarks.

``build_benchmark(name, **kwargs)`` is the one entry point (the runner calls it with a YAML's
``benchmark`` section). Every benchmark it returns has ``<x, y, t>`` samples (t = 0: no task
identity at inference) and two extra attributes the models are built from: ``input_shape`` and
``n_classes``.
"""

from __future__ import annotations

import difflib

from sparsegrow.errors import ConfigError, DatasetNotFoundError

from .cifar import split_cifar10, split_cifar100
from .classic import classic
from .mnist import load_mnist, permuted_mnist, rotated_mnist, split_mnist
from .synthetic import synthetic

BENCHMARKS = {f.__name__: f for f in (permuted_mnist, rotated_mnist, split_mnist,
                                      split_cifar10, split_cifar100, synthetic)}
CLASSIC_PREFIX = "classic:"

__all__ = ["BENCHMARKS", "DatasetNotFoundError", "benchmark_builder", "build_benchmark",
           "load_mnist", *BENCHMARKS]


def benchmark_builder(name: str):
    """The function that builds benchmark ``name`` (to check a config's keywords without data)."""
    if name.startswith(CLASSIC_PREFIX):
        return classic
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, BENCHMARKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown benchmark '{name}' (known: {', '.join(BENCHMARKS)}, "
                          f"or classic:<AvalancheGenerator>){hint}")
    return BENCHMARKS[name]


def build_benchmark(name: str, **kwargs):
    """Build benchmark ``name`` with its keyword arguments.

    :param name: one of :data:`BENCHMARKS`, or ``classic:<Name>`` for Avalanche's generators.
    :param kwargs: the builder's keyword arguments.
    """
    builder = benchmark_builder(name)
    if builder is classic:
        return classic(name[len(CLASSIC_PREFIX):], **kwargs)
    return builder(**kwargs)
