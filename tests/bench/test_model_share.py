from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from sparsegrow.bench.model_share import grown_models, model_share, step_ratios

REPO = Path(__file__).resolve().parents[2]


def test_model_share_charges_each_width_for_the_iterations_it_trained():
    # initial model for 10 steps, 1.5× for 10, 2× for the last 20, at 0.1 s a reference step
    extra = model_share([1.0, 1.5, 2.0], [10, 20], 40, 0.1)
    assert extra == pytest.approx(0.1 * (10 * 0.5 + 20 * 1.0))
    assert model_share([1.0], [], 40, 0.1) == 0.0


def test_grown_models_have_the_widths_of_each_growth_event(tmp_path):
    (tmp_path / "strategies").symlink_to(REPO / "strategies")
    (tmp_path / "experiments").mkdir()
    path = tmp_path / "experiments" / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "benchmark": {"name": "synthetic", "n_train": 16, "n_test": 8},
        "model": {"name": "mlp", "hidden": [16, 16]}, "strategies": ["naive"],
        "logging": {"output_dir": str(tmp_path / "results")}}))
    widen = {"op": "widen", "layer": "fc1", "consumer": "fc2", "units": 3, "init": "on_data"}
    events = [{"operations": [widen]}, {"operations": [widen, {**widen, "layer": "fc2",
                                                               "consumer": "head"}]}]
    models, input_shape, n_classes = grown_models(path, events)
    assert [(m.fc1.out_features, m.fc2.out_features) for m in models] == \
        [(16, 16), (19, 16), (22, 19)]
    assert input_shape == (1, 6, 6) and n_classes == 4
    x = torch.zeros(2, *input_shape)
    assert all(m(x).shape == (2, n_classes) for m in models)


def test_step_ratios_are_relative_to_the_first_model():
    torch.manual_seed(0)
    small = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))
    big = nn.Sequential(nn.Linear(64, 8192), nn.ReLU(), nn.Linear(8192, 4))  # ~500× the work
    x, y = torch.randn(128, 64), torch.randint(0, 4, (128,))
    ratios = step_ratios([small, big], x, y, repeats=5)
    assert ratios[0] == 1.0 and ratios[1] > 2.0
