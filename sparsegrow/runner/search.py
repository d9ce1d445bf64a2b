"""Hyperparameter search with Optuna (Hydra's Optuna sweeper): each trial one point.

``sparsegrow run experiments/X.yaml hydra/sweeper=optuna hydra.sweeper.n_trials=20 strategy=ewc
'strategy.plugins.ewc.ewc_lambda=tag(log, interval(1, 1000))'`` samples the keys given in the
sweeper's grammar (``interval()``, ``tag(log, ...)``, ``choice()``, ``range()``), from the
command line or the experiment file's ``sweep`` section (the command line's value of a key
replaces the file's); the other overrides are fixed. Every searched key is validated at its
bounds (each value of a choice or range) before the first trial. A trial runs every strategy ×
seed of the experiment with its sampled values, one after the other (run folders named after
the values, as a sweep's), and scores the mean final ACC of those runs on the experiment's
evaluation split: a search is meant for ``eval_split: validation``. A diverging trial scores
nothing (Optuna marks it failed). The best values and score go to
``<output_dir>/<experiment>/search.yaml``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from sparsegrow.config import load_experiment
from sparsegrow.config.compose import parse_override
from sparsegrow.config.loading import override_text, read_sweep
from sparsegrow.errors import ConfigError, DivergenceError
from sparsegrow.runner.launch import LauncherConfigError

SWEEPER = "hydra/sweeper=optuna"


def _candidates(override) -> list[str]:
    """The values of a searched override to validate: an interval's ends, else every value."""
    if override.is_discrete_sweep():
        return [override_text(v) for v in override.sweep_iterator()]
    interval = override.value()
    return [override_text(interval.start), override_text(interval.end)]


def plan_search(experiment, overrides: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """The fixed overrides, the searched keys ``{key: distribution text}`` and the ``hydra``
    overrides; every searched key validated at its bounds."""
    given = {o.split("=", 1)[0] for o in overrides}
    stored = [f"{k}={v}" for k, v in read_sweep(experiment).items() if k not in given]
    fixed, searched, hydra_args = [], {}, []
    for text in [*stored, *overrides]:
        if text.startswith(("hydra.", "hydra/")):
            hydra_args.append(text)
            continue
        override = parse_override(text, f"command line: {text}")
        if override.is_sweep_override():
            searched[override.key_or_group] = (override, text.split("=", 1)[1])
        else:
            fixed.append(text)
    if not searched:
        raise ConfigError(f"command line: {SWEEPER}: no key to search (give one as "
                          f"key=interval(a,b), choice(a,b) or range(a,b))")
    for key, (override, _) in searched.items():
        for value in _candidates(override):
            load_experiment(experiment, [*fixed, f"{key}={value}"])
    return fixed, {k: text for k, (_, text) in searched.items()}, hydra_args


def trial(cfg) -> float:
    """Hydra's task function: run the experiment with the trial's sampled values; its score."""
    import warnings

    from hydra.core.hydra_config import HydraConfig

    from sparsegrow.logging import resolve_mode
    from sparsegrow.runner.build import use_gpu_slot
    from sparsegrow.runner.run import run_one

    warnings.filterwarnings("ignore", category=DeprecationWarning, module="avalanche")
    spec = cfg.sparsegrow_trial
    os.chdir(spec.cwd)
    sampled = [f"{k}={override_text(OmegaConf.select(cfg, k))}" for k in spec.searched]
    plan = load_experiment(spec.experiment, [*spec.fixed, *sampled], sampled)
    if plan.experiment.training.device.value in ("auto", "cuda"):
        use_gpu_slot(HydraConfig.get().job.num)   # each trial process keeps the GPU it claimed
    mode = resolve_mode(plan.experiment.logging.wandb.mode.value)
    accs = []
    for strategy in plan.presets:
        for seed in plan.experiment.seeds:
            try:
                out, _ = run_one(plan, strategy, seed, wandb_mode=mode)
            except DivergenceError:          # its failed.json says why
                return float("nan")
            accs.append(json.loads((out / "metrics.json").read_text())["acc"])
    return sum(accs) / len(accs)


def search(experiment, fixed: list[str], searched: dict[str, str], hydra_args: list[str]
           ) -> Path:
    """Run the Optuna study; the file its best values are written to."""
    from hydra import initialize
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    plan = load_experiment(experiment, fixed)
    directory = Path(plan.experiment.logging.output_dir) / plan.experiment.name
    node = OmegaConf.create({"sparsegrow_trial": {
        "experiment": str(Path(experiment).resolve()), "cwd": os.getcwd(), "fixed": fixed,
        "searched": list(searched)}})
    for key in searched:            # the keys the trials' overrides set
        OmegaConf.update(node, key, None, force_add=True)
    ConfigStore.instance().store(name="sparsegrow_trial", node=node)
    sweep_dir = next((a.split("=", 1)[1] for a in hydra_args if a.startswith("hydra.sweep.dir=")),
                     f"{directory}/launches/{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    defaults = [f"hydra.sweep.dir={sweep_dir}"]
    if not any(a.startswith("hydra.sweeper.direction=") for a in hydra_args):
        defaults.append("hydra.sweeper.direction=maximize")
    GlobalHydra.instance().clear()
    with initialize(version_base=None, config_path=None, job_name="sparsegrow"):
        try:
            GlobalHydra.instance().hydra.multirun(
                config_name="sparsegrow_trial", task_function=trial,
                overrides=[*(f"{k}={v}" for k, v in searched.items()), *defaults, *hydra_args])
        except HydraException as err:
            raise LauncherConfigError(f"command line: {' '.join(str(err).split())}") from None
    best = yaml.safe_load((Path(sweep_dir) / "optimization_results.yaml").read_text())
    out = directory / "search.yaml"
    out.write_text(yaml.safe_dump({
        "objective": "mean final ACC of the trial's runs",
        "fixed": fixed, "searched": searched,
        "best_params": best["best_params"], "best_value": best["best_value"]},
        sort_keys=False))
    return out
