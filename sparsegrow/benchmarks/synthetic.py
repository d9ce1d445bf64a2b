"""A tiny, learnable stream for tests and smoke runs (seconds on a CPU).

Samples are Gaussian around one prototype per class, shaped as small images. ``scenario=
"domain"``: the same classes in every experience under a new fixed pixel permutation.
``scenario="class"``: every experience brings ``n_classes`` new classes.
"""

from __future__ import annotations

import torch

from sparsegrow.errors import ConfigError

from .streams import LabelledImages, class_benchmark, domain_benchmark, positive_int


def synthetic(*, n_experiences: int = 5, scenario: str = "domain", n_classes: int = 4,
              image_shape: tuple = (1, 6, 6), n_train: int = 200, n_test: int = 100,
              noise: float = 1.0, seed: int = 0):
    """Build the synthetic stream.

    :param n_experiences: number of experiences.
    :param scenario: ``"domain"`` (permuted inputs, same classes) or ``"class"`` (new classes).
    :param n_classes: classes per experience.
    :param image_shape: shape of one sample.
    :param n_train: training samples per experience (balanced over its classes).
    :param n_test: test samples per experience.
    :param noise: standard deviation around the class prototypes (larger = harder).
    :param seed: everything is drawn from this seed.
    """
    if scenario not in ("domain", "class"):
        raise ConfigError(f"scenario must be 'domain' or 'class', not {scenario!r}")
    for option, value in dict(n_experiences=n_experiences, n_classes=n_classes, n_train=n_train,
                              n_test=n_test).items():
        positive_int(value, option)
    if min(n_train, n_test) < n_classes:
        raise ConfigError(f"n_train={n_train} and n_test={n_test} need at least one sample of "
                          f"each of the n_classes={n_classes} classes")
    g = torch.Generator().manual_seed(seed)
    dim = int(torch.tensor(image_shape).prod())
    total = n_classes if scenario == "domain" else n_classes * n_experiences
    prototypes = torch.randn(total, dim, generator=g) * 2

    def draw(classes: torch.Tensor, n: int, perm: torch.Tensor) -> LabelledImages:
        # balanced labels in random order: every class is present (Avalanche's class-incremental
        # benchmark needs each class of the order in the data)
        y = classes[torch.randperm(n, generator=g) % len(classes)]
        x = (prototypes[y] + noise * torch.randn(n, dim, generator=g))[:, perm]
        return LabelledImages(x.view(n, *image_shape), y)

    train, test = [], []
    for e in range(n_experiences):
        if scenario == "domain":
            classes, perm = torch.arange(n_classes), torch.randperm(dim, generator=g)
        else:
            classes, perm = torch.arange(e * n_classes, (e + 1) * n_classes), torch.arange(dim)
        train.append(draw(classes, n_train, perm))
        test.append(draw(classes, n_test, perm))
    if scenario == "domain":
        return domain_benchmark(train, test, input_shape=image_shape, n_classes=n_classes)
    return class_benchmark(_concat(train), _concat(test), n_experiences=n_experiences,
                           class_order=list(range(total)), input_shape=image_shape)


def _concat(parts: list[LabelledImages]) -> LabelledImages:
    return LabelledImages(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
