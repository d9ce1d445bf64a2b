"""Run every strategy × seed of an experiment; checkpoint after every experience; resume.

A run's folder ``<output_dir>/<experiment>/<strategy>/seed<k>/`` gets ``metrics.json`` last:
its presence marks the run finished, and a rerun skips it (its files stay as they are). A run
killed earlier resumes from ``checkpoint.pt`` after its last finished experience, with the
model's grown shapes replayed, every plugin's state, the optimizer state, the RNG states, the
strategy clock and everything recorded so far, so that it ends exactly as an uninterrupted run.
A run whose training diverges (non-finite loss or parameter) stops with a
:class:`~sparsegrow.errors.DivergenceError` and leaves ``failed.json`` (the reason) beside the
checkpoint of its last finished experience.
"""

from __future__ import annotations

import inspect
import os
import re
import resource
import time
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from sparsegrow import __version__
from sparsegrow.config import Plan
from sparsegrow.config.loading import named_section
from sparsegrow.growth import Grower, count_parameters, later_units_silenced
from sparsegrow.errors import ConfigError, DivergenceError, GrowthError, IncompatiblePluginError
from sparsegrow.runner import checkpoint, metrics
from sparsegrow.runner.avalanche_state import (SamplerNotes, clock_state, load_plugin_states,
                                               load_template_state, plugin_states,
                                               template_state)
from sparsegrow.runner.build import (build_plugins, build_strategy, growth_parts,
                                     make_optimizer, protection, resolve_device,
                                     resolved_container)
from sparsegrow.runner.divergence import DivergenceGuard
from sparsegrow.runner.logger import CaptureLogger
from sparsegrow.runner.outputs import FAILED, run_metrics, write_failure, write_run_files
from sparsegrow.runner.shared_arrays import SharedArrays

# Test hook: raise after this experience index has been checkpointed (simulates a kill).
FAIL_AFTER_ENV = "SPARSEGROW_FAIL_AFTER_EXPERIENCE"
CHECKPOINT = "checkpoint.pt"


class SimulatedKill(RuntimeError):
    """Raised by the :data:`FAIL_AFTER_ENV` hook."""


def run_dir(plan: Plan, strategy: str, seed: int) -> Path:
    cfg = plan.experiment
    return Path(cfg.logging.output_dir) / cfg.name / strategy / f"seed{seed}"


def build_benchmark_for(plan: Plan, seed: int):
    """The experiment's benchmark, as the run of ``seed`` builds it."""
    from sparsegrow.benchmarks import benchmark_builder, build_benchmark

    name, kwargs = named_section(plan.experiment.benchmark, "benchmark", plan.path)
    builder = benchmark_builder(name)
    # the run's seed also draws the stream (permutations, class order) unless the YAML fixes it
    if "seed" not in kwargs and not name.startswith("classic:") \
            and "seed" in inspect.signature(builder).parameters:
        kwargs["seed"] = seed
    return build_benchmark(name, **kwargs)


def build_model_for(plan: Plan, bench):
    """The experiment's model, untrained, for the inputs and classes of ``bench``."""
    from sparsegrow.models import build_model

    name, kwargs = named_section(plan.experiment.model, "model", plan.path)
    return build_model(name, input_shape=bench.input_shape, n_classes=bench.n_classes, **kwargs)


def _wandb_id(experiment: str, strategy: str, seed: int) -> str:
    """A new W&B run id; W&B refuses the commas and slashes of a swept strategy's name."""
    name = re.sub(r"[:;,#?/']", "_", f"{experiment}-{strategy}-seed{seed}")
    return f"{name}-{os.urandom(3).hex()}"


def _example(bench, model) -> torch.Tensor:
    """A batch of the benchmark's input shape: the graph analysis exports the model on it when
    torch.fx cannot trace its forward."""
    device = next(model.parameters()).device
    return torch.zeros(2, *bench.input_shape, device=device)


def _widths(model, example) -> dict[str, int]:
    try:
        return Grower(model, example=example).widths()
    except GrowthError:   # a model no analysis can read still runs; it just has no widths
        return {}


def _optimizer_state(model, optimizer) -> dict:
    """Optimizer state with its parameters named, so it can be rebuilt in the same order."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {"groups": [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups],
            "state": optimizer.state_dict()}


def _restore_optimizer(training, model, saved: dict):
    groups = [{"params": [model.get_parameter(n) for n in names]} for names in saved["groups"]]
    optimizer = make_optimizer(training, groups)
    optimizer.load_state_dict(saved["state"])
    return optimizer


# how a run can fail with a reason that is a result (the loss diverged; a plugin refuses the
# strategy it was put in): written to its failed.json, which the summary reports
RUN_FAILURES = (DivergenceError, IncompatiblePluginError)


def _metric_timings(strategy) -> list[dict[str, float]]:
    """The cumulative timings of the evaluator's metrics (the GIFt metric's evaluations)."""
    return [m.timings for m in strategy.evaluator.metrics if hasattr(m, "timings")]


def _timings(plugins, strategy) -> dict[str, float]:
    """Cumulative seconds per pass, over the plugins and the evaluator's metrics."""
    out: dict[str, float] = {}
    for timings in [getattr(p, "timings", {}) for p in plugins] + _metric_timings(strategy):
        for key, value in timings.items():
            out[key] = out.get(key, 0.0) + value
    return out


def _growth_events(plugins, logger: CaptureLogger) -> list[dict]:
    """Growth events of every growth plugin, in training order, with their GIFt values."""
    events = sorted((e for g in growth_parts(plugins) for e in g.history),
                    key=lambda e: e["iteration"])
    gift = {}
    for name in ("GIFt/acc_before_growth", "GIFt/acc_after_growth", "GIFt/at_growth"):
        for value, x in logger.values(name):
            gift.setdefault(x, {})[name] = value
    return [{**e, **gift.get(e["iteration"], {})} for e in events]


@torch.no_grad()
def _accuracy(model, dataset, *, batch_size: int, device) -> float:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    correct = total = 0
    for x, y, *_ in loader:
        correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
        total += len(y)
    return correct / total


def _later_units_silenced_row(model, bench, timeline: list[dict], *, batch_size: int,
                              device) -> list[float] | None:
    """Final accuracy on each test experience i with the units grown after experience i was
    learned silenced (:func:`sparsegrow.growth.later_units_silenced`); None if the model never
    grew after an experience (nothing to silence) or no analysis can read it."""
    if not timeline or all(t["widths"] == timeline[-1]["widths"] for t in timeline):
        return None
    try:
        pairs = Grower(model, example=_example(bench, model)).pairs
    except GrowthError:
        return None
    was_training = model.training
    model.eval()
    try:
        row = []
        for t, experience in zip(timeline, bench.test_stream):
            with later_units_silenced(model, pairs, t["widths"]):
                row.append(_accuracy(model, experience.dataset, batch_size=batch_size,
                                     device=device))
    finally:
        model.train(was_training)
    return row


@torch.no_grad()
def _birth_gate_routing(plugins, bench, *, batch_size: int, device) -> list[float] | None:
    """For each test experience, the fraction of its inputs the birth gate judges to be of
    that experience (:mod:`sparsegrow.growth.birth_gate`); None without a gate."""
    gate = next((g.gate for g in growth_parts(plugins) if g.gate is not None), None)
    if gate is None or not gate.prototypes:
        return None
    row = []
    for k, experience in enumerate(bench.test_stream):
        hits = total = 0
        for x, *_ in torch.utils.data.DataLoader(experience.dataset, batch_size=batch_size):
            hits += int((gate.judge(x.to(device)) == k).sum())
            total += len(x)
        row.append(hits / total)
    return row


def _cumulative_dataset(train_stream, k: int):
    """What Avalanche's Cumulative has concatenated after training ``k`` experiences, rebuilt
    the same way (checkpointing it would pickle the whole underlying dataset)."""
    from avalanche.benchmarks.utils import concat_datasets

    dataset = train_stream[0].dataset
    for i in range(1, k):
        dataset = concat_datasets([dataset, train_stream[i].dataset])
    return dataset


def _schema_defaults() -> dict:
    """Each section of a run's config at its schema's defaults."""
    from omegaconf import OmegaConf

    from sparsegrow.config.schema import PresetConfig, TrainingConfig

    def defaults(schema):
        return OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True)
    training = defaults(TrainingConfig)
    return {"training": training, "preset": defaults(PresetConfig),
            "experiment": {"training": training}}


def _without_added_defaults(config: dict, recorded: dict, defaults: dict) -> dict:
    """``config`` without the keys ``recorded`` lacks whose value is the schema's default: a
    key the schema gained after a run was recorded (``training.amp``, ``preset.base_args``),
    left at its default, does not change that run."""
    out = {}
    for key, value in config.items():
        if key not in recorded and key in defaults and value == defaults[key]:
            continue
        if all(isinstance(d.get(key), dict) for d in (recorded, defaults)) \
                and isinstance(value, dict):
            value = _without_added_defaults(value, recorded[key], defaults[key])
        out[key] = value
    return out


def _minor(version: str | None) -> str | None:
    """``"0.2"`` of ``"0.2.0.dev0"``; None for a config recorded before versions were."""
    return None if version is None else ".".join(version.split(".")[:2])


def _plugin_names(config: dict) -> dict:
    """``config`` with each plugin of its preset reduced to its name."""
    return {**config, "preset": {**config["preset"], "plugins": [
        p["name"] for p in config["preset"]["plugins"]]}}


def _same_config(out: Path, recorded: dict, config: dict) -> None:
    """A run folder's results belong to one config: refuse to skip or resume with another
    (its results would silently be those of the old config)."""
    # the strategy list, seeds and sweep of the experiment may change without changing this run
    ignore = ("strategies", "seeds", "sweep")

    def strip(c):
        return {**{k: v for k, v in c.items() if k != "version"},
                "experiment": {k: v for k, v in c["experiment"].items() if k not in ignore}}
    config = _without_added_defaults(config, recorded, _schema_defaults())
    if _minor(recorded.get("version")) != _minor(config["version"]):
        # written by another minor version, whose plugin keywords may be spelled differently
        # (0.2 moved them into option groups; a recipe now expands to keywords): what the
        # results are of is still compared (stream, model, training, base, plugins), not the
        # keywords' spelling
        recorded, config = _plugin_names(recorded), _plugin_names(config)
    if strip(recorded) != strip(config):
        raise ConfigError(f"{out} holds results of a different config than this run's; move "
                          f"it away or set another logging.output_dir or name")


def _peak_memory(device) -> dict:
    if device.type == "cuda":
        return {"cuda_max_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20}
    # ru_maxrss is the whole process's peak (kB on Linux): it includes earlier runs of the
    # same process and Avalanche itself, so it is not this run's own peak.
    return {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_one(plan: Plan, strategy_name: str, seed: int, *, wandb_mode: str = "disabled",
            position: int = 0) -> tuple[Path, bool]:
    """Run (or resume, or skip) one strategy × seed; returns its folder and whether it ran."""
    out = run_dir(plan, strategy_name, seed)
    preset = plan.presets[strategy_name]
    training = plan.training(strategy_name)
    config = {"experiment": resolved_container(plan.experiment), "strategy": strategy_name,
              "preset": resolved_container(preset), "training": resolved_container(training),
              "seed": seed, "version": __version__}
    if (out / "metrics.json").is_file():
        _same_config(out, yaml.safe_load((out / "config.yaml").read_text()), config)
        return out, False
    out.mkdir(parents=True, exist_ok=True)
    (out / FAILED).unlink(missing_ok=True)     # an earlier attempt's failure; this one may pass
    base = preset.base.value
    device = resolve_device(training.device.value)

    checkpoint.seed_everything(seed)
    bench = build_benchmark_for(plan, seed)
    shared = SharedArrays([e.dataset for stream in (bench.train_stream, bench.test_stream)
                           for e in stream])
    saved = checkpoint.load(out / CHECKPOINT, shared)
    if saved is not None and "config" in saved:   # checkpoints of runner 0a42ed7 lack it
        _same_config(out, saved["config"], config)
    model = build_model_for(plan, bench)
    params_start = count_parameters(model)
    plugins = build_plugins(preset, plan.preset_paths[strategy_name])
    if saved is not None:
        operations = [op for e in saved["growth_events"] for op in e["operations"]]
        Grower(model, example=_example(bench, model)).replay(operations)
        model.load_state_dict(saved["model"])
    model.to(device)
    if saved is not None:
        optimizer = _restore_optimizer(training, model, saved["optimizer"])
        load_plugin_states(plugins, saved["plugins"], device)
    else:
        optimizer = make_optimizer(training, model.parameters())
    logger = CaptureLogger()
    # the guard and the notes are not the preset's plugins: their checkpointed states stay in
    # order
    strategy = build_strategy(base=base, model=model, optimizer=optimizer,
                              plugins=[DivergenceGuard(), SamplerNotes(plugins), *plugins],
                              base_args=preset.base_args,
                              training=training, device=device, bench=bench, logger=logger)
    state = {"rows": [], "timeline": [], "params_start": params_start,
             "wandb_id": _wandb_id(plan.experiment.name, strategy_name, seed)}
    if saved is not None:
        state = saved["run"]
        logger.load_state_dict(saved["logger"])
        vars(strategy.clock).update(saved["clock"])
        load_template_state(strategy, saved.get("template", {}))
        # Avalanche resets the optimizer state at its first make_optimizer() unless it already
        # knows the optimized parameters: tell it, so the restored momentum survives.
        strategy.optimized_param_id = dict(model.named_parameters())
        if base == "cumulative":
            strategy.dataset = _cumulative_dataset(bench.train_stream, len(state["rows"]))
        checkpoint.set_rng_state(saved["rng"])
        scaler = getattr(strategy, "scaler", None)   # float16's loss scale (runner.amp)
        if scaler is not None and saved.get("scaler") is not None:
            scaler.load_state_dict(saved["scaler"])
        # plugins restore their timings with their state; the metrics' come from the timeline
        for timings in _metric_timings(strategy):
            for key in timings:
                timings[key] = state["timeline"][-1]["timings"].get(key, 0.0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    wb = None
    if wandb_mode != "disabled":
        from sparsegrow.logging import WandBLogger

        wb = WandBLogger(project=plan.experiment.logging.wandb.project,
                         group=plan.experiment.name, name=f"{strategy_name}-seed{seed}",
                         run_id=state["wandb_id"], mode=wandb_mode, dir=out.parent.parent,
                         config=config, init_kwargs={"settings": {"silent": True}})
        if saved is not None and saved.get("wandb_logger"):
            wb.load_state_dict(saved["wandb_logger"])
        strategy.evaluator.loggers.append(wb)
        # a resumed run continues the same W&B run id from a new local folder: keep them all
        state.setdefault("wandb", []).append(wb.location)
    n = len(bench.train_stream)
    # joint training sees the whole stream at once: one step, reported with its final row
    steps = [list(bench.train_stream)] if base == "joint" else list(bench.train_stream)
    bar = tqdm(total=len(steps), initial=len(state["rows"]), position=position, leave=False,
               desc=f"{strategy_name} seed{seed}", unit="exp")
    fail_after = os.environ.get(FAIL_AFTER_ENV)
    try:
        for i in range(len(state["rows"]), len(steps)):
            gift_before = _timings(plugins, strategy).get("gift", 0.0)
            start = time.perf_counter()
            try:
                strategy.train(steps[i])
            except RUN_FAILURES as err:
                # a result too: the run's failed.json says why, and the launch goes on
                sep = ", " if isinstance(err, DivergenceError) else ": "
                err = type(err)(f"strategy {strategy_name}, seed {seed}{sep}{err}")
                write_failure(out, str(err))
                raise err from None
            train_time = time.perf_counter() - start
            # GDumb trains a fresh copy of the initial model at each experience
            model, optimizer = strategy.model, strategy.optimizer
            timings = _timings(plugins, strategy)
            # the GIFt metric's evaluations at growth are measurement, left out like eval()
            train_time -= timings.get("gift", 0.0) - gift_before
            start = time.perf_counter()
            strategy.eval(bench.test_stream)
            eval_time = time.perf_counter() - start
            row = logger.accuracy_row("test_stream", n)
            state["rows"].append(row)
            events = _growth_events(plugins, logger)
            trained = n - 1 if base == "joint" else i
            entry = {"experience": trained, "seen_avg_acc": metrics.seen_accuracy(row, trained),
                     "avg_acc": sum(row) / n, "params": count_parameters(model),
                     "params_in_use": count_parameters(model)
                     - sum(g.zeros for g in growth_parts(plugins)),
                     "train_time_s": train_time, "eval_time_s": eval_time,
                     "train_iterations": int(strategy.clock.train_iterations),
                     "growth_events": len(events), "timings": timings,
                     "widths": _widths(model, _example(bench, model)),
                     "protection": protection(plugins)}
            state["timeline"].append(entry)
            if wb is not None and entry["protection"]:
                wb.log_values({f"protection/{k}": v for k, v in entry["protection"].items()})
            checkpoint.save(out / CHECKPOINT, {
                "config": config, "run": state, "model": model.state_dict(),
                "optimizer": _optimizer_state(model, optimizer),
                "plugins": plugin_states(plugins), "growth_events": events,
                "logger": logger.state_dict(), "clock": clock_state(strategy),
                "template": template_state(strategy),
                "wandb_logger": None if wb is None else wb.state_dict(),
                "scaler": (None if getattr(strategy, "scaler", None) is None
                           else strategy.scaler.state_dict()),
                "rng": checkpoint.rng_state()}, shared)
            bar.update(1)
            if fail_after is not None and int(fail_after) == i:
                raise SimulatedKill(f"{FAIL_AFTER_ENV}={fail_after}: stopped after experience {i}")
    except BaseException:
        if wb is not None:
            wb.finish(exit_code=1)
        raise
    finally:
        bar.close()
    events = _growth_events(plugins, logger)
    result = run_metrics(state, events, _peak_memory(device), strategy=strategy_name, seed=seed)
    if base != "joint":
        silenced = _later_units_silenced_row(model, bench, state["timeline"],
                                             batch_size=training.eval_batch_size, device=device)
        result["later_units_silenced"] = None if silenced is None else {
            "acc": sum(silenced) / len(silenced), "final_row": silenced}
        routing = _birth_gate_routing(plugins, bench, batch_size=training.eval_batch_size,
                                      device=device)
        if routing is not None:
            result["birth_gate_routing"] = {"acc": sum(routing) / len(routing),
                                            "per_experience": routing}
    if wb is not None:
        wb.finish(summary=result)
        result["wandb"] = state["wandb"]
    write_run_files(out, config=config, state=state, events=events, result=result)
    (out / CHECKPOINT).unlink()
    return out, True
