"""Graph analysis: which pairs are expandable and why the other layers are not."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from growth_models import ConvPoolFlattenLinear, TinyResNet, conv_bn_conv, mlp
from sparsegrow.errors import GrowthError, SparseGrowError
from sparsegrow.growth import ExpandablePair, Grower, analyse

HEAD = "it is the output head"


def test_mlp_pairs_and_head():
    report = analyse(mlp(dropout=0.1))
    assert report.pairs == [ExpandablePair("1", "4", (), 1), ExpandablePair("4", "7", (), 1)]
    assert list(report.rejected) == ["7"] and report.rejected["7"].startswith(HEAD)
    assert report.layers == ["1", "4", "7"]


def test_conv_bn_relu_conv():
    report = analyse(conv_bn_conv())
    assert report.pairs == [ExpandablePair("0", "3", ("1",), 1)]
    assert report.rejected["3"].startswith(HEAD)  # reaches the output through pool + flatten


def test_functional_conv_pool_flatten_linear():
    report = analyse(ConvPoolFlattenLinear())
    assert report.pairs == [ExpandablePair("conv1", "conv2", ("bn1",), 1),
                            ExpandablePair("conv2", "fc", (), 4),
                            ExpandablePair("fc", "head", ("bn_fc",), 1)]


def test_resnet_block_internal_convs_expand_residual_stream_is_rejected():
    report = analyse(TinyResNet())
    assert report.pairs == [ExpandablePair("layer1.conv1", "layer1.conv2", ("layer1.bn1",), 1),
                            ExpandablePair("layer2.conv1", "layer2.conv2", ("layer2.bn1",), 1)]
    assert "more than one consumer" in report.rejected["conv1"]
    for name in ["layer1.conv2", "layer2.conv2", "layer2.shortcut.0"]:
        assert report.rejected[name].startswith("residual add on the path")
    assert report.rejected["head"].startswith(HEAD)


class _Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.ln = nn.LayerNorm(5)
        self.b = nn.Linear(5, 6)
        self.c = nn.Linear(6, 2)
        self.e = nn.Linear(4, 3)
        self.g = nn.Linear(4, 4)
        self.h = nn.Linear(4, 2)
        self.head = nn.Linear(5 + 2, 2)

    def forward(self, x):
        h = F.relu(self.b(self.ln(self.a(x))))
        gated = self.h(torch.sigmoid(self.g(x)) * x)
        return self.head(torch.cat([self.c(h), self.e(x)[:, :3] + gated[:, :1].repeat(1, 3),
                                    gated], 1)[:, :7])


def test_rejection_reasons_name_the_operation():
    report = analyse(_Mixed())
    assert report.pairs == [ExpandablePair("b", "c", (), 1)]
    assert report.rejected["a"].startswith("LayerNorm 'ln' on the path")
    assert report.rejected["c"] == "concatenation cat (node 'cat') on the path"
    assert report.rejected["e"].startswith("unsupported operation getitem")
    assert report.rejected["g"] == "mul (node 'mul') combines it with another tensor"


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(5, 5)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            return self.inner(x)
        return -self.inner(x)


def test_untraceable_module_becomes_an_opaque_leaf():
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), _Untraceable(), nn.ReLU(), nn.Linear(5, 6),
                          nn.ReLU(), nn.Linear(6, 2))
    report = analyse(model)
    assert report.pairs == [ExpandablePair("4", "6", (), 1)]
    assert report.rejected["0"] == "unsupported module _Untraceable '2' on the path"
    assert report.rejected["2.inner"].startswith("it is inside '2', whose forward torch.fx "
                                                 "cannot trace (TraceError")


def test_shared_and_unused_layers_are_rejected():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.unused = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(F.relu(self.b(F.relu(self.b(F.relu(self.a(x)))))))

    report = analyse(Shared())
    assert report.pairs == []
    assert report.rejected["a"] == "module 'b' is called 2 times (shared weights)"
    assert report.rejected["unused"] == "it is not called in the model's forward"


def test_incremental_classifier_head_is_analysed():
    from avalanche.models import IncrementalClassifier  # the engine itself never imports it

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), IncrementalClassifier(6, 3))
    grower = Grower(model)
    assert grower.pairs == [ExpandablePair("1", "3.classifier", (), 1)]
    grower.widen("1", 2, init="zero_out")
    assert model[3].classifier.in_features == 8
    assert model(torch.randn(2, 12)).shape == (2, 3)


@pytest.mark.parametrize("layer,message", [
    ("a", "cannot widen layer 'a': LayerNorm 'ln' on the path normalises across features"),
    ("head", "cannot widen layer 'head': it is the output head"),
    ("nope", "unknown layer 'nope': the model has no module of that name"),
    ("ln", "layer 'ln' is a LayerNorm; only Linear and Conv2d layers can be grown"),
])
def test_unsupported_growth_fails_with_one_message(layer, message):
    grower = Grower(_Mixed())
    with pytest.raises(GrowthError) as info:
        grower.widen(layer, 2, init="zero_out")
    assert str(info.value).startswith(message)
    assert isinstance(info.value, SparseGrowError) and "\n" not in str(info.value)


def test_untraceable_model_fails_with_one_message():
    with pytest.raises(GrowthError, match="cannot analyse model _Untraceable: torch.fx cannot "
                                          "trace its forward"):
        analyse(_Untraceable())


def test_bad_growth_arguments_fail_with_one_message():
    grower = Grower(mlp())
    with pytest.raises(GrowthError, match="unknown init 'magic'"):
        grower.widen("1", 2, init="magic")
    with pytest.raises(GrowthError, match="init_density must be in"):
        grower.widen("1", 2, init="zero_out", init_density=0.0)
    with pytest.raises(GrowthError, match="positive integer"):
        grower.widen("1", -1, init="zero_out")
    with pytest.raises(GrowthError, match="give batches and loss_fn"):
        grower.widen("1", 2, init="on_data")
    assert grower.history == [] and grower.widths() == {"1": 10, "3": 8, "5": 3}
