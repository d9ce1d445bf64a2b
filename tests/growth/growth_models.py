"""Small synthetic models and helpers for the growth-engine tests."""

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(dropout=0.0):
    layers = [nn.Flatten(), nn.Linear(12, 10), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(10, 8), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(8, 3))
    return nn.Sequential(*layers)


def conv_bn_conv():
    """Conv→BN→ReLU→Conv (a conv head: global-average the last conv's output)."""
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 5, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class ConvPoolFlattenLinear(nn.Module):
    """conv→BN→ReLU→pool→conv→ReLU→pool→flatten (x.view)→Linear→ReLU→head, functional style."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 2 * 2, 7)
        self.bn_fc = nn.BatchNorm1d(7)
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.head(F.relu(self.bn_fc(self.fc(x))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = BasicBlock(4, 4)
        self.layer2 = BasicBlock(4, 6, stride=2)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def image_input(model, n=6, seed=0):
    """An input batch of the shape ``model`` (from this file) expects."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(model, nn.Sequential) and isinstance(model[0], nn.Flatten):
        return torch.randn(n, 12, generator=g)
    channels = 2 if isinstance(model, nn.Sequential) else 1
    return torch.randn(n, channels, 8, 8, generator=g)


def batches(model, n_batches=2, n_classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        x = image_input(model, n=8, seed=seed + i)
        classes = 5 if isinstance(model, nn.Sequential) and isinstance(model[0], nn.Conv2d) \
            else n_classes
        out.append((x, torch.randint(0, classes, (8,), generator=g)))
    return out


def settle(model, steps=3, seed=2):
    """A few SGD steps in train mode so that BatchNorm statistics and weights are not at init."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for x, y in batches(model, n_batches=steps, seed=seed):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def output_change(before, after, x, mode):
    """max |Δoutput| of two models on ``x`` in ``mode`` (train mode: each on its own copy, so
    BatchNorm uses batch statistics and running-stat updates do not leak between them)."""
    results = []
    for model in (before, after):
        model = copy.deepcopy(model)
        model.train(mode == "train")
        with torch.no_grad():
            results.append(model(x))
    return (results[0] - results[1]).abs().max().item()
