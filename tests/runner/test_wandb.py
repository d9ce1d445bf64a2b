import csv
import json
import os
import struct
from pathlib import Path

import pytest

from sparsegrow.config import load_experiment
from sparsegrow.runner import run_one
from sparsegrow.runner.wandb_run import resolve_mode

_BLOCK = 32 * 1024   # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed chunks
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path: Path):
    """Decode every record of an offline run's ``run-<id>.wandb`` transaction log."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending, records = 7, b"", []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:                 # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pending + chunk)
            records.append(record)
            pending = b""
        elif kind in (_FIRST, _MIDDLE):
            pending += chunk
        else:                        # zero padding at the end of a block
            pos += left - 7 - length
    return records


def test_auto_mode_is_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    assert resolve_mode("disabled") == "disabled"


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

    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs[0].run_group == "tiny" and runs[0].display_name == "sparsegrow-seed0"
    history = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json for i in r.history.item}
            history[int(items["_step"])] = items
    matrix = [[float(v) for v in line.split(",")[1:]]
              for line in (folder / "accuracy_matrix.csv").read_text().splitlines()[1:]]
    assert sorted(history) == [0, 1, 2]
    for i, row in enumerate(matrix):
        for j, acc in enumerate(row):
            assert json.loads(history[i][f"acc/exp_{j}"]) == pytest.approx(acc)
        assert json.loads(history[i]["acc/avg"]) == pytest.approx(
            metrics["seen_avg_acc_per_experience"][i])
    assert json.loads(history[2]["model/params"]) == metrics["params_end"]
    assert json.loads(history[2]["growth/events"]) == 1
    with open(folder / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    for i, t in enumerate(timeline):   # what the plugin protects, per experience
        assert json.loads(history[i]["protection/subspace_dims/fc1"]) == int(t["subspace_dims/fc1"])

    def table(key):   # a logged wandb.Table: its JSON file in the run's files/
        return json.loads((run_folder / "files" / json.loads(history[2][f"{key}/path"]))
                          .read_text())

    assert table("accuracy_matrix")["data"] == [[i, *row] for i, row in enumerate(matrix)]
    events = json.loads((folder / "events.json").read_text())
    logged = table("growth_events")
    assert len(logged["data"]) == len(events) == 2
    for values, event in zip(logged["data"], events):
        cells = dict(zip(logged["columns"], values))
        assert cells["GIFt/at_growth"] == pytest.approx(event["GIFt/at_growth"])
        assert (cells["experience"], cells["params_after"]) == (event["experience"],
                                                                event["params_after"])
        assert cells["layers"].startswith("widen ")
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update({i.key: i.value_json for i in r.summary.update})
    assert json.loads(summary["acc"]) == pytest.approx(metrics["acc"])
    assert json.loads(summary["bwt"]) == pytest.approx(metrics["bwt"])


def _run_id(folder: Path) -> str:
    (log,) = folder.glob("run-*.wandb")
    (run_id,) = {r.run.run_id for r in read_wandb_records(log)
                 if r.WhichOneof("record_type") == "run"}
    return run_id


def _steps(folder: Path) -> list[int]:
    (log,) = folder.glob("run-*.wandb")
    return sorted(int(i.value_json) for r in read_wandb_records(log)
                  if r.WhichOneof("record_type") == "history"
                  for i in r.history.item if list(i.nested_key) == ["_step"] or i.key == "_step")


def test_resumed_run_continues_the_same_wandb_run(make_experiment, monkeypatch):
    from sparsegrow.runner.run import FAIL_AFTER_ENV, SimulatedKill

    plan = load_experiment(make_experiment(strategies=["naive"], wandb="offline"))
    monkeypatch.setenv(FAIL_AFTER_ENV, "1")
    with pytest.raises(SimulatedKill):
        run_one(plan, "naive", 0, wandb_mode="offline")
    monkeypatch.delenv(FAIL_AFTER_ENV)
    folder, _ = run_one(plan, "naive", 0, wandb_mode="offline")
    first, second = map(Path, json.loads((folder / "metrics.json").read_text())["wandb"])
    assert first != second and _run_id(first) == _run_id(second)
    assert _steps(first) == [0, 1] and _steps(second) == [2]
