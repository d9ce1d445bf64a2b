import json

import yaml

from sparsegrow.cli import main


def test_plugin_hyperparameter_from_the_command_line_runs_in_its_own_folder(make_experiment):
    path = make_experiment(strategies=["naive", "sparsegrow"], seeds=[0, 1], n_experiences=2)
    assert main(["run", str(path), "strategy=sparsegrow", "seed=1",
                 "strategy.plugins.sparsegrow.subspace_energy=0.5"]) == 0
    exp = path.parent.parent / "results" / "tiny"
    label = "sparsegrow,sparsegrow.subspace_energy=0.5"
    assert sorted(p.name for p in exp.iterdir() if p.is_dir()) == ["launches", "plots", label]
    run = exp / label / "seed1"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["strategy"] == label and config["seed"] == 1
    assert config["preset"]["plugins"] == [{"name": "sparsegrow", "subspace_energy": 0.5}]
    assert json.loads((run / "metrics.json").read_text())["n_growth_events"] == 1
    assert list(json.loads((exp / "summary.json").read_text())) == [label]
