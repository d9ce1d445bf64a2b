"""Small CNN with BatchNorm: (Conv3×3 → BN → ReLU → MaxPool2) × 2 → Flatten → Linear → ReLU → head.

Every layer before the head is growable: conv1→conv2 through BN/ReLU/pool, conv2→fc1 through
flatten (conv→flatten→linear), fc1→head is the output head.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .heads import FeaturesThenHead, make_head
from .options import positive_width


class SmallCNN(FeaturesThenHead):
    """:param input_shape: ``(channels, height, width)``.
    :param n_classes: number of outputs of a fixed head.
    :param width: channels of the first conv.
    :param conv2_width: channels of the second conv (None: twice ``width``), e.g. to build a
        grown model's widths from the start.
    :param hidden: width of the fully connected layer.
    :param head: ``"fixed"`` or ``"incremental"``.
    """

    def __init__(self, *, input_shape, n_classes: int, width: int = 32,
                 conv2_width: int | None = None, hidden: int = 128,
                 head: str = "fixed"):
        c, h, w = input_shape
        width, hidden = positive_width(width, "width"), positive_width(hidden, "hidden")
        conv2 = 2 * width if conv2_width is None else positive_width(conv2_width, "conv2_width")
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(c, width, 3, padding=1), bn1=nn.BatchNorm2d(width),
            relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(width, conv2, 3, padding=1), bn2=nn.BatchNorm2d(conv2),
            relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(conv2 * (h // 4) * (w // 4), hidden), relu3=nn.ReLU(),
            head=make_head(head, hidden, n_classes)))
