"""``sparsegrow inspect``: growable and protected layers of a model, with reasons."""

import torch

from sparsegrow.cli import main
from sparsegrow.inspection import inspect_model, load_model, summary


def test_inspect_small_cnn_prints_every_layer_with_growth_and_protection(capsys):
    assert main(["inspect", "small_cnn", "--input-shape", "1,28,28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| layer | type | width | growth | protection (gating subspace) |"
    assert lines[2:] == [
        "| conv1 | Conv2d | 32 | widens (consumer 'conv2') | subspace |",
        "| bn1 | BatchNorm2d |  | widens with 'conv1' | the batchnorm option (free / freeze / "
        "cumulative) |",
        "| conv2 | Conv2d | 64 | widens (consumer 'fc1'); gains inputs when 'conv1' widens | "
        "subspace |",
        "| bn2 | BatchNorm2d |  | widens with 'conv2' | the batchnorm option (free / freeze / "
        "cumulative) |",
        "| fc1 | Linear | 128 | widens (consumer 'head'); gains inputs when 'conv2' widens | "
        "subspace |",
        "| head | Linear | 10 | no: it is the output head (its output reaches the model output "
        "with no Linear/Conv2d after it); the head is not widened; gains inputs when 'fc1' "
        "widens | subspace |"]


def tiny_net(hidden=5, num_classes=3):
    """A user's factory: ``sparsegrow inspect test_inspection:tiny_net hidden=7``."""
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, num_classes))


def test_a_users_factory_with_options(capsys):
    assert main(["inspect", "test_inspection:tiny_net", "hidden=7", "--classes", "2",
                 "--input-shape", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:4] == ["| 0 | Linear | 7 | widens (consumer '2') | subspace |",
                          "| 2 | Linear | 2 | no: it is the output head (its output reaches the "
                          "model output with no Linear/Conv2d after it); the head is not "
                          "widened; gains inputs when '0' widens | subspace |"]


def test_depthwise_attention_and_layernorm_rows():
    model = load_model("torchvision.models.vision_transformer:VisionTransformer",
                       input_shape=(3, 16, 16), n_classes=4, image_size=16, patch_size=8,
                       num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)
    rows = {r.name: r for r in inspect_model(model, torch.randn(2, 3, 16, 16))}
    out_proj = rows["encoder.layers.encoder_layer_0.self_attention.out_proj"]
    assert out_proj.protection.startswith("importance masks: its forward never runs")
    assert rows["encoder.ln"].protection == "importance masks (not a Linear/Conv2d)"
    mobilenet = load_model("torchvision:mobilenet_v2", input_shape=(3, 32, 32))
    counts = summary(inspect_model(mobilenet, torch.randn(2, 3, 32, 32)))
    assert counts == {"Linear/Conv2d layers": 53, "producers that widen": 20,
                      "BatchNorm/depthwise widened along": 54, "subspace-protected": 53,
                      "modules on importance masks": 0, "BatchNorms (option)": 52}


def test_bad_model_and_shape_are_one_line_errors(capsys):
    assert main(["inspect", "nope:Net"]) == 2
    assert capsys.readouterr().err == ("error: cannot build model 'nope:Net': No module named "
                                       "'nope'\n")
    assert main(["inspect", "small_cnn", "--input-shape", "1x28"]) == 2
    assert capsys.readouterr().err == ("error: --input-shape must be integers like 3,32,32, "
                                       "got '1x28'\n")
    assert main(["inspect", "small_cn"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown model 'small_cn'")
