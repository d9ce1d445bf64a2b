"""Split CIFAR-10 / CIFAR-100 through torchvision's own dataset classes (real on-disk format).

Files are looked up under ``root`` (default: ``$SPARSEGROW_DATA`` or ``./data``). They are
downloaded only when ``download=True`` and the machine has internet; otherwise a missing file is
one message saying where it was looked for and how to get it.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from sparsegrow.errors import DatasetNotFoundError

from .streams import (LabelledImages, class_benchmark, class_groups, class_order_for,
                      group_subset_indices)


def data_root(root: str | None) -> str:
    return root or os.environ.get("SPARSEGROW_DATA", "data")


def _load(dataset_cls, root: str, *, train: bool, download: bool) -> LabelledImages:
    try:
        ds = dataset_cls(root, train=train, download=download)
    # RuntimeError: torchvision's "Dataset not found or corrupted"; OSError (URLError, ...):
    # download=True without internet, or an unreadable folder
    except (RuntimeError, OSError) as err:
        name = dataset_cls.__name__
        raise DatasetNotFoundError(
            f"{name} not found under {os.path.abspath(root)} ({err}). Get it on a machine with "
            f"internet: python -c \"import torchvision; torchvision.datasets.{name}('{root}', "
            f"download=True)\", or set benchmark.root / SPARSEGROW_DATA to where it is") from None
    x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).float() / 255.0
    return LabelledImages(x, torch.tensor(ds.targets, dtype=torch.long))


def _split_cifar(dataset_cls, n_classes, *, n_experiences, class_order, seed, root, download,
                 train_subset):
    order = class_order_for(n_classes, class_order, seed)
    groups = class_groups(order, n_experiences, classes=range(n_classes))  # fail before loading
    root = data_root(root)
    train = _load(dataset_cls, root, train=True, download=download)
    test = _load(dataset_cls, root, train=False, download=download)
    subset = group_subset_indices(train.y, groups, train_subset,
                                  torch.Generator().manual_seed(seed + 1))
    if subset is not None:
        train = LabelledImages(train.x, train.y, indices=subset)
    return class_benchmark(train, test, n_experiences=n_experiences, class_order=order,
                           input_shape=(3, 32, 32))


def split_cifar10(*, n_experiences: int = 5, class_order: list | None = None, seed: int = 0,
                  root: str | None = None, download: bool = False,
                  train_subset: int | None = None):
    """Class-incremental Split CIFAR-10.

    :param n_experiences: number of experiences (must divide 10).
    :param class_order: order of the classes; default a permutation drawn from ``seed``.
    :param seed: seed of the class order (when not given) and of the training subsets.
    :param root: folder holding ``cifar-10-batches-py``.
    :param download: download when missing (needs internet).
    :param train_subset: training samples per experience (None = all).
    """
    from torchvision.datasets import CIFAR10

    return _split_cifar(CIFAR10, 10, n_experiences=n_experiences, class_order=class_order,
                        seed=seed, root=root, download=download,
                        train_subset=train_subset)


def split_cifar100(*, n_experiences: int = 10, class_order: list | None = None, seed: int = 0,
                   root: str | None = None, download: bool = False,
                   train_subset: int | None = None):
    """Class-incremental Split CIFAR-100 (same parameters as :func:`split_cifar10`;
    ``root`` holds ``cifar-100-python``)."""
    from torchvision.datasets import CIFAR100

    return _split_cifar(CIFAR100, 100, n_experiences=n_experiences, class_order=class_order,
                        seed=seed, root=root, download=download,
                        train_subset=train_subset)
