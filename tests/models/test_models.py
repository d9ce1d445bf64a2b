"""Models: shapes, names the YAML and results use, growable by the engine, clear errors."""

import pytest
import torch

from sparsegrow.errors import ConfigError
from sparsegrow.growth import analyse
from sparsegrow.models import build_model


@pytest.mark.parametrize("name,shape,pairs", [
    ("mlp", (1, 28, 28), {"fc1", "fc2"}),
    ("small_cnn", (3, 32, 32), {"conv1", "conv2", "fc1"}),
    ("resnet18_reduced", (1, 28, 28), {f"layer{s}.{b}.conv1" for s in range(1, 5) for b in (0, 1)}),
])
def test_models_forward_and_expose_growable_pairs(name, shape, pairs):
    model = build_model(name, input_shape=shape, n_classes=7)
    assert model(torch.zeros(2, *shape)).shape == (2, 7)
    report = analyse(model)
    assert {p.producer for p in report.pairs} == pairs
    assert "head" in report.rejected


def test_mlp_options():
    model = build_model("mlp", input_shape=(1, 6, 6), n_classes=3, hidden=[5, 6, 7], dropout=0.5)
    assert [model.fc1.out_features, model.fc2.out_features, model.fc3.out_features] == [5, 6, 7]
    assert model.drop2.p == 0.5 and model.head.in_features == 7


def test_incremental_head_is_avalanches():
    from avalanche.models import IncrementalClassifier

    model = build_model("small_cnn", input_shape=(1, 28, 28), n_classes=10, head="incremental")
    assert isinstance(model.head, IncrementalClassifier)


@pytest.mark.parametrize("name,kwargs,match", [
    ("mlpp", {}, "unknown model 'mlpp'.*did you mean mlp"),
    ("mlp", {"hiden": [3]}, "model 'mlp'.*hiden"),
    ("mlp", {"head": "task"}, "head must be one of fixed, incremental"),
    ("mlp", {"hidden": [8, 0]}, "hidden entries must be a positive integer, not 0"),
    ("mlp", {"hidden": "wide"}, "hidden entries must be a positive integer, not 'w'"),
    ("mlp", {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ("small_cnn", {"width": -2}, "width must be a positive integer, not -2"),
    ("small_cnn", {"conv2_width": 0}, "conv2_width must be a positive integer, not 0"),
    ("resnet18_reduced", {"width": 2.5}, "width must be a positive integer, not 2.5"),
])
def test_bad_model_config_is_one_message(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_model(name, input_shape=(1, 6, 6), n_classes=2, **kwargs)


def test_small_cnn_takes_a_grown_models_widths():
    model = build_model("small_cnn", input_shape=(1, 28, 28), n_classes=10, width=8,
                        conv2_width=14, hidden=35)
    assert (model.conv2.out_channels, model.fc1.in_features, model.fc1.out_features) == (
        14, 14 * 7 * 7, 35)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_incremental_head_grows_with_the_classes_avalanche_shows_it():
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from sparsegrow.benchmarks import build_benchmark

    bench = build_benchmark("synthetic", scenario="class", n_experiences=2, n_classes=3,
                            n_train=12, n_test=6)
    model = build_model("small_cnn", input_shape=bench.input_shape, n_classes=bench.n_classes,
                        width=4, hidden=8, head="incremental")
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     train_mb_size=6, evaluator=EvaluationPlugin(loggers=[]))
    outputs = []
    for exp in bench.train_stream:
        strategy.train(exp)
        outputs.append(model(torch.zeros(1, *bench.input_shape)).shape[1])
    assert outputs == [3, 6]
