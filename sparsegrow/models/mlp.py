"""Multi-layer perceptron: Flatten → (Linear → ReLU [→ Dropout]) × len(hidden) → head.

Layers are named ``fc1``, ``fc2``, ... and ``head``, the names YAML ``layers:`` lists and the
per-layer widths in results use.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from torch import nn

from sparsegrow.errors import ConfigError

from .heads import FeaturesThenHead, make_head
from .options import positive_widths


class MLP(FeaturesThenHead):
    """:param input_shape: shape of one sample, e.g. ``(1, 28, 28)``.
    :param n_classes: number of outputs of a fixed head.
    :param hidden: widths of the hidden layers (one integer: one hidden layer).
    :param dropout: dropout probability after every hidden activation (0 = none).
    :param head: ``"fixed"`` or ``"incremental"``.
    :param bias: whether the hidden layers and a fixed head have biases (Gradient Projection
        Memory's Permuted MNIST network has none).
    """

    def __init__(self, *, input_shape, n_classes: int, hidden=(400, 400), dropout: float = 0.0,
                 head: str = "fixed", bias: bool = True):
        if not 0 <= dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), not {dropout!r}")
        layers = OrderedDict(flatten=nn.Flatten())
        width = math.prod(input_shape)
        for i, h in enumerate(positive_widths(hidden, "hidden"), start=1):
            layers[f"fc{i}"] = nn.Linear(width, h, bias=bias)
            layers[f"relu{i}"] = nn.ReLU()
            if dropout:
                layers[f"drop{i}"] = nn.Dropout(dropout)
            width = h
        layers["head"] = make_head(head, width, n_classes, bias=bias)
        super().__init__(layers)
