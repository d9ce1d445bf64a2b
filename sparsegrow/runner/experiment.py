"""Run a whole experiment: every strategy × seed, then summary files, plots and the table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sparsegrow.config import Plan
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


def run_experiment(plan: Plan) -> ExperimentResult:
    from sparsegrow.runner.wandb_run import resolve_mode

    cfg = plan.experiment
    mode = resolve_mode(cfg.logging.wandb.mode.value)
    directory = Path(cfg.logging.output_dir) / cfg.name
    ran, skipped, wandb_locations = [], [], []
    runs = [(strategy, seed) for strategy in cfg.strategies for seed in cfg.seeds]
    with tqdm(runs, desc=cfg.name, unit="run", position=0) as bar:
        for strategy, seed in bar:
            out, did_run = run_one(plan, strategy, seed, wandb_mode=mode, position=1)
            (ran if did_run else skipped).append(out)
            wandb_locations += _wandb_locations(out)
    strategies, seeds = list(cfg.strategies), list(cfg.seeds)
    summary = summarize(directory, strategies, seeds)
    table = write_summary(directory, summary, title=f"{cfg.name}", n_seeds=len(seeds))
    plots = plot_experiment(directory, strategies, seeds)
    return ExperimentResult(directory=directory, table=table, plots=plots, ran=ran,
                            skipped=skipped, wandb=wandb_locations, wandb_mode=mode)


def _wandb_locations(run_dir: Path) -> list[str]:
    """Where the run's W&B data is (offline folders or URL), as its metrics.json records."""
    value = json.loads((run_dir / "metrics.json").read_text()).get("wandb", [])
    # runs finished before resumed runs kept every folder recorded a single one
    return [value] if isinstance(value, str) else value
