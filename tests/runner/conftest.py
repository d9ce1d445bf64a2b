from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_experiment(tmp_path):
    """Write a tiny synthetic experiment next to a link to the shipped strategies/."""
    (tmp_path / "strategies").symlink_to(REPO / "strategies")
    (tmp_path / "experiments").mkdir()

    def make(strategies=("naive",), seeds=(0,), wandb="disabled", n_experiences=3,
             name="tiny", benchmark=None, **training):
        cfg = {"name": name,
               "benchmark": {"name": "synthetic", "n_experiences": n_experiences,
                             "n_train": 96, "n_test": 48, **(benchmark or {})},
               "model": {"name": "mlp", "hidden": [16, 16]},
               "training": {"lr": 0.05, "momentum": 0.9, "batch_size": 16, **training},
               "strategies": list(strategies), "seeds": list(seeds),
               "logging": {"wandb": {"mode": wandb, "project": "test"},
                           "output_dir": str(tmp_path / "results")}}
        path = tmp_path / "experiments" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return make
