import runpy
import sys
from pathlib import Path
from statistics import mean

import pytest
import torch
import wandb
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from mktestdocs import grab_code_blocks
from PIL import Image
from torch import nn

from sparsegrow import GIFtMetric, SparseGrowPlugin, WandBLogger
from sparsegrow.benchmarks import synthetic
from sparsegrow.errors import ConfigError
from sparsegrow.growth import count_parameters
from wandb_records import history_rows, of_type, read_wandb_records

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "wandb_avalanche.py"
STREAM_ACC = "Top1_Acc_Stream/eval_phase/test_stream/Task000"


def _offline_run(folder: Path):
    (log,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    return log.parent, read_wandb_records(log)


def _file(run_folder: Path, row: dict, key: str) -> Path:
    return run_folder / "files" / row[f"{key}/path"]


def test_plain_avalanche_script_logs_what_the_evaluator_measured(tmp_path):
    import json

    torch.manual_seed(0)
    bench = synthetic(n_experiences=3, n_train=96, n_test=48)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 4))
    gift = GIFtMetric(stream=bench.test_stream)
    logger = WandBLogger(project="test", name="plain", mode="offline", dir=tmp_path)
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), gift,
                                 loggers=[logger])
    plugin = SparseGrowPlugin()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                     train_mb_size=16, plugins=[plugin], evaluator=evaluator)
    matrix, params = [], []
    for experience in bench.train_stream:
        strategy.train(experience)
        strategy.eval(bench.test_stream)
        last = evaluator.get_last_metrics()
        matrix.append([last[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"]
                       for j in range(3)])
        params.append(count_parameters(model))
    logger.finish()
    run_folder, records = _offline_run(tmp_path)
    rows = history_rows(records)

    # after every training experience: its accuracies, averages and model size
    experiences = [r for r in rows if "acc/avg" in r]
    assert [r["trained_exp"] for r in experiences] == [0, 1, 2]
    for i, r in enumerate(experiences):
        assert [r[f"acc/exp_{j:03d}"] for j in range(3)] == matrix[i]
        assert r["acc/avg"] == pytest.approx(mean(matrix[i]))
        assert r["acc/avg_seen"] == pytest.approx(mean(matrix[i][:i + 1]))
        assert r["model/params"] == params[i]
    last = experiences[-1]
    table = json.loads(_file(run_folder, last, "acc/matrix").read_text())
    assert table["columns"] == ["trained_exp", "exp_000", "exp_001", "exp_002"]
    assert table["data"] == [[i, *row] for i, row in enumerate(matrix)]
    curves = json.loads(_file(run_folder, last, "acc/forgetting_curves_table").read_text())
    assert sorted(curves["data"]) == sorted([i, f"exp {j}", acc]
                                            for i, row in enumerate(matrix)
                                            for j, acc in enumerate(row))
    with Image.open(_file(run_folder, last, "acc/matrix_heatmap")) as heatmap:
        assert heatmap.size == (last["acc/matrix_heatmap/width"],
                                last["acc/matrix_heatmap/height"])

    # every growth event, as the GIFt metric and the growth plugin recorded it
    grown = plugin.growth.history
    events = [r for r in rows if "growth/table/path" in r]
    assert len(events) == len(gift.events) == len(grown) >= 2
    assert last["growth/events"] == len(grown)
    for r, measured, event in zip(events, gift.events, grown):
        assert (r["trained_exp"], r["growth/iteration"]) == (event["experience"],
                                                             event["iteration"])
        assert (r["growth/params_before"], r["growth/params_after"]) == (
            event["params_before"], event["params_after"])
        assert {k[len("growth/units/"):]: v for k, v in r.items()
                if k.startswith("growth/units/")} == {op["layer"]: op["units"]
                                                      for op in event["operations"]}
        if "GIFt/at_growth" in measured:   # measured from the second experience on
            assert (r["growth/acc_before"], r["growth/acc_after"], r["growth/GIFt"]) == (
                measured["GIFt/acc_before_growth"], measured["GIFt/acc_after_growth"],
                measured["GIFt/at_growth"])
    assert any("growth/GIFt" in r for r in events)
    table = json.loads(_file(run_folder, events[-1], "growth/table").read_text())
    assert [row[-1] for row in table["data"]] == [
        ", ".join(f"{op['layer']} +{op['units']}" for op in e["operations"]) for e in grown]

    # the evaluator's own metrics under their names, at Avalanche's x
    xs, values = evaluator.get_all_metrics()[STREAM_ACC]
    assert [(r["iteration"], r[STREAM_ACC]) for r in rows if STREAM_ACC in r] == list(
        zip(xs, values))
    axes = {m.name: m.step_metric for m in of_type(records, "metric")}
    assert axes["acc/exp_000"] == axes["growth/GIFt"] == "trained_exp"
    assert axes[STREAM_ACC] == "iteration"


def test_unknown_mode_is_one_line_naming_the_choices():
    with pytest.raises(ConfigError, match=r"^W&B mode must be one of auto, online, offline, "
                                          r"disabled, not 'cloud'$"):
        WandBLogger(mode="cloud")


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    # the docs include the script itself; the README, read on GitHub, holds a copy
    assert EXAMPLE.read_text() in grab_code_blocks((REPO / "README.md").read_text())
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))   # mode="auto": offline here
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    wandb.teardown()   # wandb settles its default folder (./wandb) once per process: here
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--experiences", "2",
                                      "--train-subset", "256"])
    script = runpy.run_path(str(EXAMPLE), run_name="__main__")
    run_folder, records = _offline_run(tmp_path)
    assert run_folder == Path(script["wandb_logger"].location)
    rows = history_rows(records)
    assert [r["trained_exp"] for r in rows if "acc/avg" in r] == [0, 1]
    assert any("growth/GIFt" in r for r in rows)


def test_unpickled_logger_continues_the_same_run(tmp_path):
    """Avalanche's save_checkpoint pickles the strategy with its loggers."""
    import pickle

    logger = WandBLogger(project="test", mode="offline", dir=tmp_path)
    logger.log_values({"protection/dims": 3})
    saved = pickle.dumps(logger)
    logger.finish(exit_code=1)                   # the process that saved it dies
    resumed = pickle.loads(saved)
    resumed.log_values({"protection/dims": 5})
    resumed.finish()
    runs = []
    for log in tmp_path.glob("wandb/offline-run-*/run-*.wandb"):
        records = read_wandb_records(log)
        (run,) = of_type(records, "run")
        runs.append((run.run_id, [(r["_step"], r["protection/dims"])
                                  for r in history_rows(records)]))
    assert sorted(runs, key=lambda r: r[1]) == [(logger.run.id, [(0, 3)]),
                                                (logger.run.id, [(1, 5)])]
