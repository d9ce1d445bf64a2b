import json

import yaml

from sparsegrow.cli import main


def test_optuna_search_writes_the_best_trial(make_experiment):
    path = make_experiment(strategies=["ewc"], n_experiences=2)
    assert main(["run", str(path), "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                 "hydra.sweeper.sampler.seed=0",
                 "strategy.plugins.ewc.ewc_lambda=tag(log, interval(1, 1000))"]) == 0
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
