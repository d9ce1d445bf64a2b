"""Each table of RESULTS.md names one command,
``sparsegrow run experiments/[tuning/]<name>.yaml``: its jobs (sweep and named variants
expanded) are exactly the committed runs of the table, so running it again reruns nothing and
changes no row."""

import json
from pathlib import Path

import pytest

from sparsegrow.report.spec import SECTIONS, GrowthRows, Table, experiment_file
from sparsegrow.runner.launch import plan_jobs

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted({e for s in SECTIONS if isinstance(s, Table) for e in s.experiments}
                     | {e for s in SECTIONS if isinstance(s, GrowthRows) for _, e, _ in s.rows})


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_tables_command_resolves_to_its_committed_runs(experiment, monkeypatch):
    monkeypatch.chdir(REPO)           # output_dir "results" is the committed folder
    jobs, _ = plan_jobs(Path(experiment_file(experiment)), [])
    runs = {(j.strategy, f"seed{j.seed}") for j in jobs}
    summary = json.loads((REPO / "results" / experiment / "summary.json").read_text())
    finished = {(strategy, seed) for strategy, entry in summary.items()
                for seed in (f"seed{s}" for s in entry["seeds"])}
    # a run that failed (diverged) is a result too: its failed.json says why
    failed = {(strategy, seed) for strategy, seed in runs
              if (REPO / "results" / experiment / strategy / seed / "failed.json").is_file()}
    assert runs == finished | failed and not finished & failed
    for strategy, seed in finished:
        assert (REPO / "results" / experiment / strategy / seed / "metrics.json").is_file()
