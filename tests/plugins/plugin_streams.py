"""Tiny synthetic streams and models for the plugin tests (seconds on 2 CPU cores)."""

import math

import torch
import torch.nn as nn
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import concat_datasets
from avalanche.benchmarks.utils.classification_dataset import (
    _make_taskaware_tensor_classification_dataset as tensor_dataset)
from avalanche.training.plugins import EvaluationPlugin


def _dataset(x, y):
    return tensor_dataset(x, y, task_labels=0, targets=y.tolist())


def synthetic_stream(*, n_experiences=5, scenario="domain", n_classes=4, n_train=128,
                     n_test=64, shape=(1, 6, 6), seed=0, permute=True):
    """Domain: the same classes under a new input permutation per experience (``permute``;
    else new samples of the same distribution). Class: 2 new classes per experience. Samples
    are Gaussian around class prototypes, shaped ``shape``."""
    dim = math.prod(shape)
    g = torch.Generator().manual_seed(seed)
    total_classes = n_classes if scenario == "domain" else 2 * n_experiences
    protos = torch.randn(total_classes, dim, generator=g) * 2
    train, test = [], []
    for e in range(n_experiences):
        perm = (torch.randperm(dim, generator=g) if scenario == "domain" and permute
                else torch.arange(dim))
        classes = (torch.arange(n_classes) if scenario == "domain"
                   else torch.tensor([2 * e, 2 * e + 1]))
        sets = []
        for n in (n_train, n_test):
            y = classes[torch.randint(len(classes), (n,), generator=g)]
            x = (protos[y] + torch.randn(n, dim, generator=g))[:, perm]
            sets.append(_dataset(x.view(n, *shape), y))
        train.append(sets[0])
        test.append(sets[1])
    if scenario == "class":  # Avalanche's class-incremental stream (IncrementalClassifier needs it)
        return class_incremental_benchmark(
            {"train": concat_datasets(train), "test": concat_datasets(test)},
            num_experiences=n_experiences, class_order=list(range(total_classes)))
    return with_task_labels(benchmark_from_datasets(train=train, test=test))


def mlp(n_out=4, hidden=16):
    return nn.Sequential(nn.Flatten(), nn.Linear(36, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def quiet_evaluator(*metrics):
    return EvaluationPlugin(*metrics, loggers=[])
