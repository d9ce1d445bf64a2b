"""Sweeps and launching: an experiment's runs as jobs of a Hydra launcher.

Any override may sweep, in Hydra's grammar (``seed=0,1,2``, ``seed=range(0,3)``,
``training.lr=choice(0.01,0.1)``); so may the experiment file's ``sweep`` section (command-line
values of the same key replace it). Every point of the sweep is validated as an experiment
before the first job starts, and every point's strategies × seeds are jobs, one run folder each.
A swept key other than the strategy, seed, name and logging is appended to the strategy's run
name (``naive,training.lr=0.1``), so that no two jobs share a folder.

The jobs go to the launcher that ``hydra/launcher=...`` picks: Hydra's basic launcher (one
after the other in this process) by default, ``joblib`` (parallel processes on this machine) or
``submitit_slurm`` (SLURM jobs; ``submitit_local`` runs the same path locally); ``hydra.*``
overrides configure it. On a machine with several GPUs, each process that runs jobs claims one
GPU and keeps it for all its jobs (:class:`~sparsegrow.runner.build.GpuClaims`): with joblib,
set ``hydra.launcher.n_jobs`` to the GPU count and no two jobs share a GPU, although joblib
reuses its workers in any order. A job whose training diverges reports it and the others go
on. After the launch, every experiment folder's summary and plots are written from the runs
that finished.
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from sparsegrow.config import load_experiment
from sparsegrow.config.compose import parse_override
from sparsegrow.config.loading import override_text, read_sweep
from sparsegrow.errors import ConfigError, SparseGrowError
from sparsegrow.runner.outputs import summarize, write_summary
from sparsegrow.runner.plots import plot_experiment

# swept keys that already name the run's folder (or pick its strategies and seeds)
_NOT_IN_RUN_NAME = ("strategy", "strategies", "seed", "seeds", "name", "logging")


class LauncherConfigError(ConfigError):
    """Hydra could not compose the launcher's config: raised before any job starts."""


@dataclass
class Job:
    """One strategy × seed of one sweep point: ``load_experiment(experiment, overrides,
    run_name_overrides)`` gives its plan, ``strategy`` names its preset there."""

    overrides: List[str]
    run_name_overrides: List[str]
    strategy: str
    seed: int
    directory: str               # <output_dir>/<name>


@dataclass
class LaunchConfig:
    """The primary config of every Hydra job: job ``job`` of ``jobs``."""

    experiment: str
    cwd: str
    jobs: List[Job] = field(default_factory=list)
    job: int = 0


@dataclass
class ExperimentResult:
    """What the launch left in one experiment folder."""

    directory: Path
    table: str
    plots: list[Path]
    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)     # one line per failed run
    missing: list[str] = field(default_factory=list)    # runs neither finished nor failed
    wandb: list[str] = field(default_factory=list)      # offline folders or URLs of the runs
    wandb_mode: str = "disabled"


def expand(overrides: list[str], stored: dict[str, str] | None = None
           ) -> tuple[list[list[str]], list[str], list[str]]:
    """The sweep points (each a list of ``key=value``), the swept keys, and the ``hydra``
    overrides, from the experiment's stored ``sweep`` and the command line's overrides."""
    hydra_args, values, given = [], {}, set()
    for source, text in [("experiment sweep", f"{k}={v}") for k, v in (stored or {}).items()] \
            + [("command line", o) for o in overrides]:
        if text.startswith(("hydra.", "hydra/")):
            hydra_args.append(text)
            continue
        override = parse_override(text, f"{source}: {text}")
        key = override.key_or_group
        if override.is_add() or override.is_delete() or override.is_force_add():
            raise ConfigError(f"{source}: {key}: '+' and '~' are not needed: every key exists "
                              f"in the experiment's schema")
        if source == "command line" and key in given:
            raise ConfigError(f"command line: {key}: given twice")
        if source == "command line":
            given.add(key)
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(f"{source}: {key}: only lists, range() and choice() sweep "
                                  f"here (an interval is searched with hydra/sweeper=optuna)")
            values[key] = [override_text(v) for v in override.sweep_iterator()]
        else:
            values[key] = [override_text(override.value())]
    swept = [k for k, v in values.items() if len(v) > 1]
    points = [[f"{k}={v}" for k, v in zip(values, combo)]
              for combo in itertools.product(*values.values())]
    return points, swept, hydra_args


def plan_jobs(experiment, overrides: list[str]) -> tuple[list[Job], list[str]]:
    """Every job of the sweep, each point validated; and the ``hydra`` overrides."""
    points, swept, hydra_args = expand(overrides, read_sweep(experiment))
    jobs, folders = [], {}
    for point in points:
        named = [o for o in point if o.split("=", 1)[0] in swept
                 and o.split("=", 1)[0].split(".")[0] not in _NOT_IN_RUN_NAME]
        plan = load_experiment(experiment, point, named)
        directory = Path(plan.experiment.logging.output_dir) / plan.experiment.name
        for strategy in plan.presets:
            run = _run_config(plan, strategy)
            for seed in plan.experiment.seeds:
                folder = directory / strategy / f"seed{seed}"
                if folder in folders:
                    if folders[folder][1] == run:
                        continue    # the same run in several points (a plugin it lacks swept)
                    raise ConfigError(f"command line: sweep points {' '.join(folders[folder][0])}"
                                      f" and {' '.join(point)} would both write {folder}")
                folders[folder] = (point, run)
                jobs.append(Job(overrides=point, run_name_overrides=named, strategy=strategy,
                                seed=int(seed), directory=str(directory)))
    return jobs, hydra_args


def _run_config(plan, strategy: str) -> dict:
    """What decides a strategy's runs in ``plan`` (the experiment's run lists aside)."""
    from sparsegrow.runner.build import resolved_container

    experiment = {k: v for k, v in resolved_container(plan.experiment).items()
                  if k not in ("strategies", "seeds", "sweep")}
    return {"experiment": experiment, "preset": resolved_container(plan.presets[strategy]),
            "training": resolved_container(plan.training(strategy))}


def run_job(cfg) -> dict:
    """Hydra's task function: run (or resume, or skip) one job, in whatever process the
    launcher gave it. A diverged run is reported, not raised, so the sweep goes on."""
    from hydra.core.hydra_config import HydraConfig

    from sparsegrow.runner.build import use_gpu_slot
    from sparsegrow.runner.run import RUN_FAILURES, run_one
    from sparsegrow.logging import resolve_mode

    # Avalanche's own deprecation notices (e.g. ReplayPlugin's storage policy, on every
    # experience) name Avalanche's calls, not the user's config; they would break the progress
    # bars. Set here: a launcher's fresh process has none of the caller's filters.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="avalanche")
    warnings.filterwarnings("ignore", message="Call to deprecated function",
                            category=DeprecationWarning)
    os.chdir(cfg.cwd)     # SLURM jobs start elsewhere; relative output_dirs mean the caller's
    job = cfg.jobs[cfg.job]
    plan = load_experiment(cfg.experiment, list(job.overrides), list(job.run_name_overrides))
    if plan.training(job.strategy).device.value in ("auto", "cuda"):   # "a GPU", not GPU 0
        use_gpu_slot(HydraConfig.get().job.num)
    mode = resolve_mode(plan.experiment.logging.wandb.mode.value)
    try:
        out, ran = run_one(plan, job.strategy, job.seed, wandb_mode=mode)
    except RUN_FAILURES:          # its failed.json says why; the summary reads it
        return {"status": "failed"}
    except SparseGrowError as err:
        # a reason in one line (a plugin refuses the strategy; a finished run of another
        # config): reported with every other job's, after the others ran
        return {"status": "error", "error": f"{job.strategy} seed{job.seed}: {err}"}
    return {"status": "ran" if ran else "skipped", "folder": str(out), "wandb_mode": mode}


def launch(experiment, jobs: list[Job], hydra_args: list[str]) -> list[dict]:
    """Run ``jobs`` through the Hydra launcher ``hydra_args`` pick; each job's outcome."""
    from hydra import initialize
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    ConfigStore.instance().store(name="sparsegrow_jobs", node=OmegaConf.structured(LaunchConfig(
        experiment=str(Path(experiment).resolve()), cwd=os.getcwd(), jobs=jobs)))
    defaults = []
    if not any(a.startswith("hydra.sweep.dir=") for a in hydra_args):
        # the launch's logs (and submitit's pickles) beside the results they produce
        defaults.append(f"hydra.sweep.dir={jobs[0].directory}/launches/"
                        "${now:%Y-%m-%d_%H-%M-%S}")
    GlobalHydra.instance().clear()
    with initialize(version_base=None, config_path=None, job_name="sparsegrow"):
        try:
            batches = GlobalHydra.instance().hydra.multirun(
                config_name="sparsegrow_jobs", task_function=run_job,
                overrides=[f"job={','.join(str(i) for i in range(len(jobs)))}", *defaults,
                           *hydra_args])
        except HydraException as err:
            # Hydra's hints about its search path and '+' do not apply to a launcher's keys
            text = str(err).split("Config search path")[0].split("To append to your config")[0]
            raise LauncherConfigError(f"command line: {' '.join(text.split())}") from None
        return [r.return_value for batch in batches for r in batch]


def aggregate(jobs: list[Job], outcomes: list[dict] | None = None) -> list[ExperimentResult]:
    """Summary files and plots of every experiment folder the jobs write, from the runs found
    finished there; the others are named, failed or missing. ``outcomes`` (the jobs' return
    values; None when the launch itself failed) tell which ran now and the W&B mode."""
    results = {}
    errored = set()   # (directory, strategy, "seed<k>") of the jobs stopped by an error
    for i, job in enumerate(jobs):
        result = results.setdefault(job.directory, ExperimentResult(
            directory=Path(job.directory), table="", plots=[]))
        outcome = outcomes[i] if outcomes is not None else {"status": None}
        if outcome["status"] == "error":
            result.failed.append(outcome["error"])
            errored.add((job.directory, job.strategy, f"seed{job.seed}"))
        if outcome["status"] in ("ran", "skipped"):
            folder = Path(outcome["folder"])
            (result.ran if outcome["status"] == "ran" else result.skipped).append(folder)
            if outcome["wandb_mode"] != "disabled":
                result.wandb_mode = outcome["wandb_mode"]
                result.wandb += wandb_locations(folder)
    for directory, result in results.items():
        mine = [j for j in jobs if j.directory == directory]
        strategies = list(dict.fromkeys(j.strategy for j in mine))
        seeds = list(dict.fromkeys(j.seed for j in mine))
        summary = summarize(result.directory, strategies, seeds)
        result.table = write_summary(result.directory, summary, title=result.directory.name)
        result.plots = plot_experiment(result.directory, strategies, seeds)
        for strategy, entry in summary.items():
            for seed, status in entry.get("unfinished", {}).items():
                if status.startswith("failed: "):
                    result.failed.append(status.removeprefix("failed: "))
                elif (directory, strategy, seed) not in errored:
                    result.missing.append(f"{strategy} {seed}")
    return list(results.values())


def wandb_locations(run_dir: Path) -> list[str]:
    """Where the run's W&B data is (offline folders or URL), as its metrics.json records."""
    value = json.loads((run_dir / "metrics.json").read_text()).get("wandb", [])
    # runs finished before resumed runs kept every folder recorded a single one
    return [value] if isinstance(value, str) else value
