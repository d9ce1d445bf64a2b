import csv
import json
import os
from pathlib import Path

import pytest

from sparsegrow.config import load_experiment
from sparsegrow.errors import ConfigError
from sparsegrow.logging import resolve_mode
from sparsegrow.runner import run_dir, run_one
from wandb_records import history_rows, of_type, read_wandb_records, summary


def test_auto_mode_is_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    assert resolve_mode("disabled") == "disabled"
    with pytest.raises(ConfigError, match="W&B mode must be one of auto, online, offline, "
                                          "disabled, not 'cloud'"):
        resolve_mode("cloud")


def _by_experience(rows: list[dict], key: str) -> dict[int, dict]:
    """The last row holding ``key`` for every trained experience."""
    return {r["trained_exp"]: r for r in rows if key in r}


def _table(run_folder: Path, row: dict, key: str) -> dict:
    """A logged wandb.Table: its JSON file in the run's files/."""
    return json.loads((run_folder / "files" / row[f"{key}/path"]).read_text())


def test_offline_run_holds_the_logged_metrics(make_experiment, monkeypatch, tmp_path):
    plan = load_experiment(make_experiment(strategies=["sparsegrow"], wandb="offline"))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    folder, _ = run_one(plan, "sparsegrow", 0, wandb_mode="offline")
    assert not list(cwd.iterdir())                  # nothing of W&B's in the working directory
    assert "WANDB_DIR" not in os.environ            # nor a setting left for later runs
    metrics = json.loads((folder / "metrics.json").read_text())
    (run_folder,) = map(Path, metrics["wandb"])
    assert run_folder.name.startswith("offline-run-")
    assert run_folder.is_relative_to(folder.parent.parent)     # W&B data under the results
    (log,) = run_folder.glob("run-*.wandb")
    records = read_wandb_records(log)

    runs = of_type(records, "run")
    assert runs[0].run_group == "tiny" and runs[0].display_name == "sparsegrow-seed0"
    rows = history_rows(records)
    experiences = _by_experience(rows, "acc/avg")
    matrix = [[float(v) for v in line.split(",")[1:]]
              for line in (folder / "accuracy_matrix.csv").read_text().splitlines()[1:]]
    assert sorted(experiences) == [0, 1, 2]
    for i, row in enumerate(matrix):
        for j, acc in enumerate(row):
            assert experiences[i][f"acc/exp_{j:03d}"] == acc
        assert experiences[i]["acc/avg_seen"] == pytest.approx(
            metrics["seen_avg_acc_per_experience"][i])
    last = experiences[2]
    assert last["model/params"] == metrics["params_end"]
    events = json.loads((folder / "events.json").read_text())
    assert last["growth/events"] == len(events) == 2
    with open(folder / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    protected = _by_experience(rows, "protection/subspace_dims/fc1")
    for i, t in enumerate(timeline):   # what the plugin protects, per experience
        assert protected[i]["protection/subspace_dims/fc1"] == int(t["subspace_dims/fc1"])

    assert _table(run_folder, last, "acc/matrix")["data"] == [
        [i, *row] for i, row in enumerate(matrix)]
    growth = [r for r in rows if "growth/table/path" in r]
    logged = _table(run_folder, growth[-1], "growth/table")
    assert len(logged["data"]) == len(events)
    for values, event in zip(logged["data"], events):
        cells = dict(zip(logged["columns"], values))
        assert cells["GIFt"] == pytest.approx(event["GIFt/at_growth"])
        assert (cells["trained_exp"], cells["iteration"], cells["params_before"],
                cells["params_after"]) == (event["experience"], event["iteration"],
                                           event["params_before"], event["params_after"])
        assert sorted(cells["layers"].split(", ")) == sorted(
            f"{op['layer']} +{op['units']}" for op in event["operations"])
    logged_summary = summary(records)
    assert logged_summary["acc"] == pytest.approx(metrics["acc"])
    assert logged_summary["bwt"] == pytest.approx(metrics["bwt"])


def _run(folder: Path) -> tuple[str, list[dict]]:
    """The run id and the history rows of one offline run folder."""
    (log,) = folder.glob("run-*.wandb")
    records = read_wandb_records(log)
    (run_id,) = {r.run_id for r in of_type(records, "run")}
    return run_id, history_rows(records)


def test_resumed_run_continues_the_same_wandb_run(make_experiment, monkeypatch):
    from sparsegrow.runner.run import FAIL_AFTER_ENV, SimulatedKill

    plan = load_experiment(make_experiment(strategies=["naive"], wandb="offline"))
    monkeypatch.setenv(FAIL_AFTER_ENV, "1")
    with pytest.raises(SimulatedKill):
        run_one(plan, "naive", 0, wandb_mode="offline")
    monkeypatch.delenv(FAIL_AFTER_ENV)
    folder, _ = run_one(plan, "naive", 0, wandb_mode="offline")
    first, second = map(Path, json.loads((folder / "metrics.json").read_text())["wandb"])
    (first_id, before), (second_id, after) = _run(first), _run(second)
    assert first != second and first_id == second_id
    # the resumed part goes on after the killed part: W&B steps only increase
    assert max(r["_step"] for r in before) < min(r["_step"] for r in after)
    assert sorted(_by_experience(before, "acc/avg")) == [0, 1]
    assert sorted(_by_experience(after, "acc/avg")) == [2]
    # the matrix logged after the resume holds the rows from before it too
    matrix = [[float(v) for v in line.split(",")[1:]]
              for line in (folder / "accuracy_matrix.csv").read_text().splitlines()[1:]]
    last = _by_experience(after, "acc/avg")[2]
    assert _table(second, last, "acc/matrix")["data"] == [
        [i, *row] for i, row in enumerate(matrix)]


def test_cli_prints_how_to_upload_offline_runs(make_experiment, monkeypatch, capsys):
    from sparsegrow.cli import main

    path = make_experiment(strategies=["ewc"], wandb="offline", n_experiences=2)
    # a strategy named after a plugin override: W&B's run id may not hold its comma
    override = "strategy.plugins.ewc.ewc_lambda=10"
    assert main(["run", str(path), override]) == 0
    out = capsys.readouterr().out
    folder = run_dir(load_experiment(path, [override]), "ewc,ewc.ewc_lambda=10", 0)
    (location,) = json.loads((folder / "metrics.json").read_text())["wandb"]
    assert f"  wandb sync {location}\n" in out
    assert Path(location).is_dir()
