"""Reduced ResNet-18 (Lopez-Paz & Ranzato's GEM version: BasicBlocks [2, 2, 2, 2], ``width`` = 20
filters instead of 64), adapted to any input size with adaptive average pooling.

Inside each block conv1 → bn1 → relu → conv2 is growable; the convs that write the residual
stream (every block's conv2, the stem, the shortcuts) are not, and the growth engine says why.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import make_head
from .options import positive_width


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = _conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Reduced(nn.Module):
    """:param input_shape: ``(channels, height, width)``.
    :param n_classes: number of outputs of a fixed head.
    :param width: filters of the first stage (20 in the reduced ResNet-18, 64 in ResNet-18).
    :param head: ``"fixed"`` or ``"incremental"``.
    """

    def __init__(self, *, input_shape, n_classes: int, width: int = 20, head: str = "fixed"):
        super().__init__()
        width = positive_width(width, "width")
        self.conv1, self.bn1 = _conv3x3(input_shape[0], width), nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        stages, c_in = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            c_out = width * 2 ** i
            stages.append(nn.Sequential(BasicBlock(c_in, c_out, stride),
                                        BasicBlock(c_out, c_out, 1)))
            c_in = c_out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten()
        self.head = make_head(head, c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.head(self.flatten(self.pool(out)))
