import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sparsegrow.cli import main
from sparsegrow.errors import DivergenceError
from sparsegrow.runner.divergence import DivergenceGuard
from sparsegrow.runner.run import CHECKPOINT

REPO = Path(__file__).resolve().parents[2]


def test_guard_names_the_first_non_finite_parameter():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].bias[1] = float("inf")
    strategy = SimpleNamespace(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.5),
                               clock=SimpleNamespace(train_exp_counter=2, train_exp_iterations=7))
    with pytest.raises(DivergenceError) as info:
        DivergenceGuard().after_training_exp(strategy)
    assert str(info.value) == (
        "experience 2, after its last iteration 6: parameter 1.bias is not finite; likely cause:"
        " the learning rate (adam, training.lr=0.5) or a plugin's loss penalty is too large for "
        "this model; lower it")
    with torch.no_grad():
        model[1].bias[1] = 0.0
    DivergenceGuard().after_training_exp(strategy)        # finite again: no error


def test_guard_stops_an_exploding_loss_relative_to_the_experience_start():
    model = nn.Linear(2, 2)
    clock = SimpleNamespace(train_exp_counter=1, train_exp_iterations=0, train_exp_epochs=0)
    strategy = SimpleNamespace(model=model, clock=clock,
                               optimizer=torch.optim.SGD(model.parameters(), lr=50.0))
    guard = DivergenceGuard(loss_factor=100)
    guard.before_training_exp(strategy)
    for i, loss in enumerate([2.5, 40.0, 250.0]):      # 250 = 100 × 2.5: not yet over
        clock.train_exp_iterations = i
        strategy.loss = torch.tensor(loss)
        guard.after_backward(strategy)
    guard.check(strategy)
    for i, loss in ((3, 251.0), (4, float("nan"))):
        clock.train_exp_iterations, clock.train_exp_epochs = i, 1
        strategy.loss = torch.tensor(loss)
        guard.after_backward(strategy)                  # read later: no host sync per step
    with pytest.raises(DivergenceError) as info:        # the first bad iteration, read late
        guard.check(strategy)
    assert str(info.value) == (
        "experience 1, iteration 3 (epoch 1): training loss exploded to 251, over 100 × its "
        "value at the experience's first iteration (2.5); likely cause: the learning rate (sgd, "
        "training.lr=50) or a plugin's loss penalty is too large for this model; lower it")
    # the next experience starts from its own first loss; below 1 the reference is 1
    guard.before_training_exp(strategy)
    for loss in (0.01, 100.0):
        strategy.loss = torch.tensor(loss)
        guard.after_backward(strategy)
    guard.check(strategy)
    strategy.loss = torch.tensor(float("inf"))
    guard.after_backward(strategy)
    with pytest.raises(DivergenceError, match="iteration 4 \\(epoch 1\\): training loss is inf;"):
        guard.after_training_exp(strategy)


def test_guard_reads_the_device_every_check_every_iterations():
    model = nn.Linear(2, 2)
    clock = SimpleNamespace(train_exp_counter=0, train_exp_iterations=0, train_exp_epochs=0)
    strategy = SimpleNamespace(model=model, clock=clock,
                               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    guard = DivergenceGuard(check_every=3)
    guard.before_training_exp(strategy)
    for i, loss in enumerate([1.0, float("nan"), 1.0]):
        clock.train_exp_iterations = i
        strategy.loss = torch.tensor(loss)
        if i < 2:
            guard.after_backward(strategy)
    with pytest.raises(DivergenceError, match="^experience 0, iteration 1 \\(epoch 0\\): "
                                              "training loss is nan;"):
        guard.after_backward(strategy)                  # the third iteration reads


def test_guard_names_non_finite_gradients_unless_a_grad_scaler_skips_them():
    model = nn.Linear(2, 2)
    model(torch.ones(1, 2)).sum().backward()
    model.weight.grad[0, 0] = float("inf")
    clock = SimpleNamespace(train_exp_counter=0, train_exp_iterations=5, train_exp_epochs=0)
    strategy = SimpleNamespace(model=model, clock=clock, loss=torch.tensor(0.5),
                               optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    guard = DivergenceGuard()
    guard.after_backward(strategy)
    with pytest.raises(DivergenceError, match="iteration 5 \\(epoch 0\\): the gradients are "
                                              "not finite \\(norm inf\\) at a finite loss"):
        guard.check(strategy)
    strategy.scaler = torch.amp.GradScaler("cpu")       # a skipped step, not divergence
    guard = DivergenceGuard()
    guard.after_backward(strategy)
    guard.check(strategy)


def test_diverging_run_fails_alone_and_keeps_its_finished_experiences(tmp_path, make_experiment,
                                                                      capsys):
    # EWC's penalty is 0 × inf = nan from the first iteration of experience 1 on: experience 0
    # finishes, experience 1 diverges at its iteration 0.
    path = make_experiment(strategies=["naive", "ewc_inf"], seeds=[0])
    strategies = tmp_path / "strategies"
    strategies.unlink()
    strategies.mkdir()
    (strategies / "naive.yaml").write_text((REPO / "strategies" / "naive.yaml").read_text())
    (strategies / "ewc_inf.yaml").write_text(
        "base: naive\nplugins:\n  - name: ewc\n    ewc_lambda: .inf\n")
    line = ("strategy ewc_inf, seed 0, experience 1, iteration 0 (epoch 0): training loss is nan;"
            " likely cause: the learning rate (sgd, training.lr=0.05) or a plugin's loss penalty "
            "is too large for this model; lower it")

    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"failed: {line}\n" in err
    assert "error: 1 of 2 run(s) failed" in err
    exp = tmp_path / "results" / "tiny"
    failed = exp / "ewc_inf" / "seed0"
    assert json.loads((failed / "failed.json").read_text()) == {"error": line}
    assert not (failed / "metrics.json").exists()
    kept = torch.load(failed / CHECKPOINT, weights_only=False)
    assert len(kept["run"]["rows"]) == 1          # experience 0 is kept
    assert (exp / "naive" / "seed0" / "metrics.json").is_file()
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["naive"]["seeds"] == [0] and "unfinished" not in summary["naive"]
    assert summary["ewc_inf"]["seeds"] == []
    assert summary["ewc_inf"]["unfinished"] == {"seed0": f"failed: {line}"}
    assert summary["ewc_inf"]["metrics"]["acc"] == {"mean": None, "std": None}
    assert f"- ewc_inf seed0: failed: {line}\n" in (exp / "summary.md").read_text()

    # a rerun skips the finished run and resumes the failed one after experience 0: same line
    assert main(["run", str(path)]) == 1
    assert f"failed: {line}\n" in capsys.readouterr().err
