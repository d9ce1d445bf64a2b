"""The built wheel, installed (not editable) in a new virtual environment, works outside the
repository: the README's example and ``sparsegrow run`` with the built-in presets, and with a
user's strategies/ folder that adds a preset and overrides one by name.

The new environment takes the dependencies (torch alone is gigabytes) from this one through a
``.pth`` line: a path listed there is searched after the environment's own site-packages and its
own ``.pth`` files are not run, so this environment's editable SparseGrow stays invisible.
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = {"name": "tiny",
              "benchmark": {"name": "synthetic", "n_experiences": 2, "n_train": 64, "n_test": 32},
              "model": {"name": "mlp", "hidden": [16]},
              "training": {"batch_size": 16},
              "strategies": ["naive", "sparsegrow"], "seeds": [0],
              "logging": {"wandb": {"mode": "disabled", "project": "t"},
                          "output_dir": "results"}}


def _run(args, cwd, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "PYTHON"))}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A new environment with the wheel `python -m build` makes installed in it; its bin/."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", root / "dist", REPO],
         cwd=root)
    (wheel,) = (root / "dist").glob("sparsegrow-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", root / "venv"], cwd=root)
    python = root / "venv" / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
          "--no-index", wheel], cwd=root)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=root).strip())
    ours = {sysconfig.get_path("purelib"), *site.getsitepackages()}
    (purelib / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    where = _run([python, "-c", "import sparsegrow; print(sparsegrow.__file__)"], cwd=root)
    assert Path(where.strip()).is_relative_to(root / "venv"), where
    return root / "venv" / "bin"


def test_readme_example_runs_from_the_installed_wheel(venv, tmp_path):
    shutil.copy(REPO / "examples" / "wandb_avalanche.py", tmp_path)
    _run([venv / "python", "wandb_avalanche.py", "--experiences", "2", "--train-subset", "256"],
         cwd=tmp_path, WANDB_MODE="offline")
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_run_with_the_built_in_presets(venv, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    _run([venv / "sparsegrow", "run", "tiny.yaml"], cwd=tmp_path)
    for strategy in ("naive", "sparsegrow"):
        run = tmp_path / "results" / "tiny" / strategy / "seed0"
        assert (run / "metrics.json").is_file()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["preset"]["plugins"][0]["name"] == "sparsegrow"


def test_run_with_a_local_strategies_folder_that_adds_and_overrides(venv, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ewc.yaml").write_text(
        "base: naive\nplugins:\n  - name: ewc\n    ewc_lambda: 7.0\n")
    (tmp_path / "strategies" / "mine.yaml").write_text("base: naive\nplugins: []\n")
    # strategy= picks presets: it failed in Hydra with strategies/ next to the experiment
    _run([venv / "sparsegrow", "run", "tiny.yaml", "strategy=ewc,mine,naive"], cwd=tmp_path)
    runs = tmp_path / "results" / "tiny"
    presets = {s: yaml.safe_load((runs / s / "seed0" / "config.yaml").read_text())["preset"]
               for s in ("ewc", "mine", "naive")}
    assert presets["ewc"]["plugins"] == [{"name": "ewc", "ewc_lambda": 7.0}]
    assert presets["mine"]["plugins"] == [] and presets["naive"]["plugins"] == []
