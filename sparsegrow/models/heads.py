"""Classification heads: a fixed ``nn.Linear`` over all classes, or Avalanche's
``IncrementalClassifier`` that adds output units as new classes arrive."""

from __future__ import annotations

from torch import nn

from sparsegrow.errors import ConfigError

HEADS = ("fixed", "incremental")


class FeaturesThenHead(nn.Sequential):
    """An ``nn.Sequential`` whose last module is its classification head."""

    def get_features(self, x):
        """The input to the head: what Avalanche's LFL keeps close to the previous model's
        (its ``BaseModel`` interface)."""
        for module in list(self)[:-1]:
            x = module(x)
        return x


def make_head(kind: str, in_features: int, n_classes: int, *, bias: bool = True) -> nn.Module:
    if kind == "fixed":
        return nn.Linear(in_features, n_classes, bias=bias)
    if kind == "incremental":
        if not bias:
            raise ConfigError("head 'incremental' always has a bias (Avalanche's "
                              "IncrementalClassifier): use bias: true or head: fixed")
        from avalanche.models import IncrementalClassifier

        return IncrementalClassifier(in_features, initial_out_features=2)
    raise ConfigError(f"head must be one of {', '.join(HEADS)}, not {kind!r}")
