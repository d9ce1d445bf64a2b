"""Run a whole experiment: every strategy × seed, then summary files, plots and the table.

A run that diverges fails alone: the others still run, and the summary says which failed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sparsegrow.config import Plan
from sparsegrow.errors import DivergenceError
from sparsegrow.runner.outputs import summarize, write_summary
from sparsegrow.runner.plots import plot_experiment
from sparsegrow.runner.run import run_one


@dataclass
class ExperimentResult:
    directory: Path
    table: str
    plots: list[Path]
    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    wandb: list[str] = field(default_factory=list)
    wandb_mode: str = "disabled"
    n_runs: int = 0
    failed: list[str] = field(default_factory=list)     # one line per failed run
    missing: list[str] = field(default_factory=list)     # runs neither finished nor failed


def run_experiment(plan: Plan) -> ExperimentResult:
    from sparsegrow.logging import resolve_mode

    cfg = plan.experiment
    mode = resolve_mode(cfg.logging.wandb.mode.value)
    directory = Path(cfg.logging.output_dir) / cfg.name
    ran, skipped, failed, wandb_locations = [], [], [], []
    strategies, seeds = list(plan.presets), list(cfg.seeds)
    runs = [(strategy, seed) for strategy in strategies for seed in seeds]
    with tqdm(runs, desc=cfg.name, unit="run", position=0) as bar:
        for strategy, seed in bar:
            try:
                out, did_run = run_one(plan, strategy, seed, wandb_mode=mode, position=1)
            except DivergenceError as err:
                failed.append(str(err))
                continue
            (ran if did_run else skipped).append(out)
            wandb_locations += _wandb_locations(out)
    summary = summarize(directory, strategies, seeds)
    table = write_summary(directory, summary, title=f"{cfg.name}")
    plots = plot_experiment(directory, strategies, seeds)
    return ExperimentResult(directory=directory, table=table, plots=plots, ran=ran,
                            skipped=skipped, wandb=wandb_locations, wandb_mode=mode,
                            n_runs=len(runs), failed=failed,
                            missing=[f"{strategy} {seed}" for strategy, entry in summary.items()
                                     for seed, status in entry.get("unfinished", {}).items()
                                     if status == "missing"])


def _wandb_locations(run_dir: Path) -> list[str]:
    """Where the run's W&B data is (offline folders or URL), as its metrics.json records."""
    value = json.loads((run_dir / "metrics.json").read_text()).get("wandb", [])
    # runs finished before resumed runs kept every folder recorded a single one
    return [value] if isinstance(value, str) else value
