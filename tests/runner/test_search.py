import json

import pytest
import yaml

from sparsegrow.cli import main


def test_optuna_search_writes_the_best_trial(make_experiment):
    path = make_experiment(strategies=["ewc"], n_experiences=2)
    data = yaml.safe_load(path.read_text())     # the search stored in the experiment file
    data["sweep"] = {"strategy.plugins.ewc.ewc_lambda": "tag(log, interval(1, 1000))"}
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                 "hydra.sweeper.sampler.seed=0"]) == 0
    exp = path.parent.parent / "results" / "tiny"
    trials = {float(run.parent.name.split("=")[1]):
              json.loads((run / "metrics.json").read_text())["acc"]
              for run in exp.glob("ewc,ewc.ewc_lambda=*/seed0")}
    assert len(trials) == 2 and all(1 <= value <= 1000 for value in trials)
    best = yaml.safe_load((exp / "search.yaml").read_text())
    assert best["best_value"] == max(trials.values())
    assert trials[best["best_params"]["strategy.plugins.ewc.ewc_lambda"]] == max(trials.values())


def test_search_bounds_are_validated_before_any_trial(make_experiment, capsys):
    path = make_experiment()
    assert main(["run", str(path), "hydra/sweeper=optuna", "training.lr=interval(0, 1)"]) == 2
    assert capsys.readouterr().err == "error: command line: training.lr: must be > 0, got 0.0\n"
    assert main(["run", str(path), "hydra/sweeper=optuna", "training.lr=0.1"]) == 2
    assert "no key to search" in capsys.readouterr().err
    assert not (path.parent.parent / "results").exists()


def test_trials_use_their_process_gpu(make_experiment, monkeypatch, tmp_path):
    import torch

    import sparsegrow.runner.build as build_module
    import sparsegrow.runner.run as run_module

    monkeypatch.setattr(build_module, "GPU_CLAIMS", build_module.GpuClaims(tmp_path / "locks"))

    def fake_run(plan, strategy, seed, **kwargs):      # what a trial would train: not needed
        out = tmp_path / "runs" / strategy
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps({"acc": 0.5}))
        return out, True

    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(run_module, "run_one", fake_run)
    path = make_experiment(strategies=["ewc"])
    assert main(["run", str(path), "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
                 "strategy.plugins.ewc.ewc_lambda=interval(1, 1000)"]) == 0
    assert chosen == [0, 0, 0]   # sequential trials in one process keep the GPU it claimed


def test_the_command_line_replaces_the_files_search(make_experiment):
    from sparsegrow.errors import ConfigError
    from sparsegrow.runner.search import SWEEPER, plan_search

    path = make_experiment()
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "sweep": {"training.lr": "interval(0, 1)"}}))
    with pytest.raises(ConfigError, match="^command line: training.lr: must be > 0, got 0.0$"):
        plan_search(path, [SWEEPER])
    fixed, searched, hydra_args = plan_search(path, [SWEEPER, "training.lr=interval(0.01, 1)",
                                                     "seed=3"])
    assert (fixed, searched, hydra_args) == (["seed=3"], {"training.lr": "interval(0.01, 1)"},
                                             [SWEEPER])
