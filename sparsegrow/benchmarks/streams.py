"""Turn per-experience datasets into task-agnostic Avalanche benchmarks with ``<x, y, t>`` samples.

Every stream of the project goes through here, so that every Avalanche strategy and plugin sees
the same kind of data: samples keep a task label (always 0; the model is never told the task),
because LwF, DER and ``class_accuracy_metrics`` fail on samples without one (facts note). The
benchmark also carries ``input_shape`` and ``n_classes`` so models can be built from it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch.utils.data import Dataset

from sparsegrow.errors import ConfigError


class LabelledImages(Dataset):
    """Images ``x[i]`` (after ``transform``) with labels ``y[i]``, optionally a subset of rows.

    The tensors are shared, never copied, so a stream of 100 permutations of MNIST costs one
    copy of MNIST: the per-experience change is applied lazily per sample by ``transform``, which
    maps images ``[..., C, H, W]`` (one or a batch) to images of the same shape.
    With ``cache=True`` the transformed rows are computed once, at the first access, and kept:
    for evaluation sets, which every evaluation reads in full after every experience, this
    trades 31 MB per MNIST experience for not paying the per-sample transform again each time.
    """

    CACHE_CHUNK = 1024  # rows transformed at once when caching: bounded temporary memory

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, transform=None, indices=None,
                 cache: bool = False):
        self.x, self.y, self.transform, self.cache = x, y, transform, cache
        self.indices = torch.arange(len(y)) if indices is None else indices
        self.targets = y[self.indices].tolist()
        self._cached: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if self.cache and self.transform is not None:
            if self._cached is None:
                self._cached = self._transform_all()
            return self._cached[i], self.targets[i]
        x = self.x[int(self.indices[i])]
        return (x if self.transform is None else self.transform(x)), self.targets[i]

    def _transform_all(self) -> torch.Tensor:
        out = torch.empty(len(self), *self.x.shape[1:], dtype=self.x.dtype)
        for start in range(0, len(self), self.CACHE_CHUNK):
            rows = self.indices[start:start + self.CACHE_CHUNK]
            out[start:start + len(rows)] = self.transform(self.x[rows])
        return out


def positive_int(value, option: str) -> int:
    """``value`` if it is an integer >= 1, else a ConfigError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option} must be a positive integer, not {value!r}")
    return value


def subset_indices(n: int, size: int | None, generator: torch.Generator) -> torch.Tensor | None:
    """A random subset of ``size`` of ``range(n)`` (sorted), or None for all of them."""
    if size is None or positive_int(size, "train_subset") >= n:
        return None
    return torch.randperm(n, generator=generator)[:size].sort().values


def _taskaware(ds: Dataset):
    from avalanche.benchmarks.utils.classification_dataset import (
        _make_taskaware_classification_dataset)

    return _make_taskaware_classification_dataset(ds, task_labels=0, targets=ds.targets)


def _annotate(bench, input_shape: Sequence[int], n_classes: int):
    bench.input_shape = tuple(int(s) for s in input_shape)
    bench.n_classes = int(n_classes)
    return bench


def domain_benchmark(train: Sequence[Dataset], test: Sequence[Dataset], *,
                     input_shape: Sequence[int], n_classes: int):
    """Domain-incremental: experience k trains on ``train[k]`` and is evaluated on ``test[k]``."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    bench = benchmark_from_datasets(train=[_taskaware(d) for d in train],
                                    test=[_taskaware(d) for d in test])
    return _annotate(with_task_labels(bench), input_shape, n_classes)


def class_groups(class_order: Sequence[int], n_experiences: int, *,
                 classes: Iterable[int]) -> list[list[int]]:
    """``class_order`` cut into ``n_experiences`` equal groups: the classes of each experience.

    :raises ConfigError: when the order is not a permutation of ``classes`` or the groups
        cannot be equal.
    """
    order, classes = [int(c) for c in class_order], sorted(int(c) for c in set(classes))
    if sorted(order) != classes:
        raise ConfigError(f"class_order {order} must be a permutation of the classes {classes}")
    if len(order) % positive_int(n_experiences, "n_experiences"):
        raise ConfigError(f"n_experiences={n_experiences} does not divide the {len(order)} "
                          "classes into equal groups")
    size = len(order) // n_experiences
    return [order[k:k + size] for k in range(0, len(order), size)]


def group_subset_indices(targets: torch.Tensor, groups: Sequence[Sequence[int]],
                         size: int | None, generator: torch.Generator) -> torch.Tensor | None:
    """``size`` random samples for every group of classes, as sorted indices into ``targets``;
    None (everything) when ``size`` is None.

    The samples of a group are spread evenly over its classes (the first ``size % len(group)``
    classes get one more), so that no class vanishes from a small subset: Avalanche's
    class-incremental benchmark needs every class of the order in the training data.
    """
    if size is None:
        return None
    positive_int(size, "train_subset")
    chosen = []
    for group in groups:
        if size < len(group):
            raise ConfigError(f"train_subset={size} is smaller than the {len(group)} classes "
                              "of an experience: every class needs a sample")
        for j, c in enumerate(group):
            members = (targets == c).nonzero().flatten()
            quota = size // len(group) + (j < size % len(group))
            chosen.append(members[torch.randperm(len(members), generator=generator)[:quota]])
    return torch.cat(chosen).sort().values


def class_benchmark(train: Dataset, test: Dataset, *, n_experiences: int,
                    class_order: Sequence[int], input_shape: Sequence[int]):
    """Class-incremental: ``class_order`` split into ``n_experiences`` equal groups."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    order = [c for group in class_groups(class_order, n_experiences, classes=train.targets)
             for c in group]
    # Passing class_order (never seed) keeps Avalanche from reseeding the global torch RNG.
    bench = class_incremental_benchmark({"train": _taskaware(train), "test": _taskaware(test)},
                                        num_experiences=n_experiences, class_order=order)
    return _annotate(with_task_labels(bench), input_shape, len(order))


def class_order_for(n_classes: int, class_order, seed: int) -> list[int]:
    """The given order, or a permutation drawn from ``seed`` (without touching the global RNG)."""
    if class_order is not None:
        return list(class_order)
    return torch.randperm(n_classes, generator=torch.Generator().manual_seed(seed)).tolist()
