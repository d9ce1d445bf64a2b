"""Where presets come from: a user's strategies/ folder first, then the built-in ones."""

from pathlib import Path

import pytest
import yaml

from sparsegrow.config import load_experiment
from sparsegrow.config.loading import BUILTIN_PRESETS
from sparsegrow.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = {"name": "t", "benchmark": {"name": "synthetic", "n_experiences": 2},
              "model": {"name": "mlp", "hidden": [8]}, "seeds": [0]}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty folder outside the repository, also the working directory (whose strategies/
    would otherwise be the repository's)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _experiment(folder: Path, strategies) -> Path:
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump({**EXPERIMENT, "strategies": strategies}))
    return path


def test_the_repository_strategies_folder_is_the_built_in_presets():
    assert (REPO / "strategies").resolve() == BUILTIN_PRESETS
    assert {"naive", "ewc", "sparsegrow"} <= {p.stem for p in BUILTIN_PRESETS.glob("*.yaml")}


def test_built_in_presets_without_any_strategies_folder(folder):
    plan = load_experiment(_experiment(folder, ["naive", "sparsegrow"]))
    assert plan.preset_paths == {"naive": BUILTIN_PRESETS / "naive.yaml",
                                 "sparsegrow": BUILTIN_PRESETS / "sparsegrow.yaml"}


def test_a_local_strategies_folder_adds_presets_and_overrides_built_ins_by_name(folder):
    (folder / "strategies").mkdir()
    (folder / "strategies" / "ewc.yaml").write_text(
        "base: naive\nplugins:\n  - name: ewc\n    ewc_lambda: 7.0\n")
    (folder / "strategies" / "mine.yaml").write_text("base: naive\nplugins: []\n")
    plan = load_experiment(_experiment(folder, ["naive", "ewc", "mine"]))
    assert plan.preset_paths == {"naive": BUILTIN_PRESETS / "naive.yaml",
                                 "ewc": folder / "strategies" / "ewc.yaml",
                                 "mine": folder / "strategies" / "mine.yaml"}
    assert plan.presets["ewc"].plugins[0].ewc_lambda == 7.0
    built_in = yaml.safe_load((BUILTIN_PRESETS / "ewc.yaml").read_text())
    assert built_in["plugins"][0]["ewc_lambda"] != 7.0


def test_the_strategies_folder_next_to_the_experiment_comes_before_the_working_directory(
        folder):
    (folder / "strategies").mkdir()
    (folder / "strategies" / "mine.yaml").write_text("base: naive\nplugins: []\n")
    (folder / "project" / "strategies").mkdir(parents=True)
    (folder / "project" / "strategies" / "mine.yaml").write_text("base: joint\nplugins: []\n")
    plan = load_experiment(_experiment(folder / "project", ["mine"]))
    assert plan.presets["mine"].base.value == "joint"


def test_strategy_override_with_strategies_next_to_the_experiment(folder):
    # Hydra took the folder strategies/ for a config group and refused strategies=[naive]
    (folder / "strategies").mkdir()
    (folder / "strategies" / "mine.yaml").write_text("base: naive\nplugins: []\n")
    path = _experiment(folder, ["naive", "mine"])
    assert list(load_experiment(path, ["strategy=mine"]).presets) == ["mine"]
    assert list(load_experiment(path, ["strategies=[naive,ewc]"]).presets) == ["naive", "ewc"]


def test_unknown_preset_names_where_it_looked(folder):
    (folder / "strategies").mkdir()
    (folder / "strategies" / "mine.yaml").write_text("base: naive\nplugins: []\n")
    path = _experiment(folder, ["naive", "nope"])
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    message = str(info.value)
    assert message.startswith(f"{path}: strategies[1]: unknown preset 'nope' (not in "
                              f"{folder / 'strategies'} nor the built-in presets; known: ")
    assert "mine, mir, naive," in message and "\n" not in message
