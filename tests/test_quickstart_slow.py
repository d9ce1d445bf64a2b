"""The README's main job, end to end on real MNIST (slow: select with ``pytest -m slow``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_runs_and_sparsegrow_forgets_less_than_naive(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sparsegrow.cli", "run", str(REPO / "experiments/quickstart.yaml"),
         f"logging.output_dir={tmp_path}", "logging.wandb.mode=offline"],
        capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| sparsegrow |" in proc.stdout and "wandb sync" in proc.stdout
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text())
    acc = {s: summary[s]["metrics"]["acc"]["mean"] for s in ("naive", "ewc", "sparsegrow")}
    bwt = {s: summary[s]["metrics"]["bwt"]["mean"] for s in ("naive", "sparsegrow")}
    assert acc["sparsegrow"] > acc["naive"] and bwt["sparsegrow"] > bwt["naive"]
    plots = {p.name for p in (tmp_path / "quickstart" / "plots").glob("*.png")}
    assert {"average_accuracy.png", "growth_params.png"} <= plots
