"""Models selected by name in YAML: ordinary ``nn.Module``s the growth engine analyses with
torch.fx (no special base class). Every model names its classifier ``head``.
"""

from __future__ import annotations

import difflib
import inspect

from torch import nn

from sparsegrow.errors import ConfigError

from .cnn import SmallCNN
from .mlp import MLP
from .resnet import ResNet18Reduced

MODELS = {"mlp": MLP, "small_cnn": SmallCNN, "resnet18_reduced": ResNet18Reduced}

__all__ = ["MLP", "MODELS", "ResNet18Reduced", "SmallCNN", "build_model", "model_class"]


def model_class(name: str) -> type[nn.Module]:
    """The class of model ``name`` (to check a config's keywords without building it)."""
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model '{name}' (known: {', '.join(MODELS)}){hint}")
    return MODELS[name]


def build_model(name: str, *, input_shape, n_classes: int, **kwargs) -> nn.Module:
    """Build model ``name`` for samples of ``input_shape`` and ``n_classes`` classes.

    :param name: one of :data:`MODELS`.
    :param input_shape: shape of one sample (the benchmark's ``input_shape``).
    :param n_classes: number of classes (the benchmark's ``n_classes``).
    :param kwargs: the model's own options (``hidden``, ``width``, ``dropout``, ``head``).
    """
    cls = model_class(name)
    arguments = dict(input_shape=tuple(input_shape), n_classes=n_classes, **kwargs)
    try:  # check the keywords up front: a TypeError from inside a model is a bug, not a config
        inspect.signature(cls).bind(**arguments)
    except TypeError as err:
        raise ConfigError(f"model '{name}': {err}") from None
    return cls(**arguments)
