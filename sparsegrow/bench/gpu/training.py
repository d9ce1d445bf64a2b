"""Training sections: SparseGrow vs Naive train time and peak memory (CUDA events), and one
experience under autocast (the runner's own AMP templates)."""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from sparsegrow.errors import SparseGrowError
from sparsegrow.runner.amp import AMP_DTYPES, amp_template

from .sections import Budget

AMP_NAMES = {dtype: name for name, dtype in AMP_DTYPES.items()}


def _plan(experiment: Path, train_subset: int, overrides: list[str]):
    from sparsegrow.config import load_experiment
    from sparsegrow.runner.run import build_benchmark_for

    plan = load_experiment(experiment, [f"++benchmark.train_subset={train_subset}", *overrides])
    return plan, build_benchmark_for(plan, 0)


def _strategy(plan, name: str, bench, device, *, cls=None, **kwargs):
    """Strategy ``name`` of ``plan`` as the runner builds it, without metrics (no evaluation
    at growth events in the timed work); ``cls``: a Naive subclass."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from sparsegrow.runner.build import build_plugins, make_optimizer
    from sparsegrow.runner.checkpoint import seed_everything
    from sparsegrow.runner.run import build_model_for

    if plan.presets[name].base.value != "naive":
        raise SparseGrowError(f"strategy '{name}': the GPU check times Naive-based presets only")
    training = plan.training(name)
    seed_everything(0)
    model = build_model_for(plan, bench).to(device)
    plugins = build_plugins(plan.presets[name], plan.preset_paths[name])
    return (cls or Naive)(model=model, optimizer=make_optimizer(training, model.parameters()),
                          criterion=nn.CrossEntropyLoss(), train_mb_size=training.batch_size,
                          train_epochs=training.epochs, eval_mb_size=training.eval_batch_size,
                          device=device, plugins=plugins, evaluator=EvaluationPlugin(loggers=[]),
                          **kwargs), plugins


def _growth_events(plugins) -> int:
    from sparsegrow.runner.build import growth_parts

    return sum(len(part.history) for part in growth_parts(plugins))


class _Clock:
    """Seconds of the work inside ``with``: CUDA events after a synchronise on CUDA (the work
    is asynchronous), else wall time."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds = 0.0

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            self._start, self._end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000
        else:
            self.seconds = time.perf_counter() - self._t0


def _time_strategy(plan, name: str, bench, device, budget: Budget) -> dict:
    from sparsegrow.runner.build import grows

    baseline_mb = None
    if device.type == "cuda":
        gc.collect()      # the previous strategy's model, held in reference cycles
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        baseline_mb = torch.cuda.memory_allocated(device) / 2**20
    strategy, plugins = _strategy(plan, name, bench, device)
    per_experience = []
    for exp in list(bench.train_stream)[: budget.experiences]:
        with _Clock(device) as clock:
            strategy.train(exp)
        per_experience.append(clock.seconds)
    passes: dict[str, float] = {}    # the plugins' own timings: where the extra time goes
    for plugin in plugins:
        for key, seconds in getattr(plugin, "timings", {}).items():
            passes[key] = passes.get(key, 0.0) + seconds
    return {"train_s": sum(per_experience), "per_experience_s": per_experience,
            "plugin_timings_s": passes,
            "iterations": int(strategy.clock.train_iterations),
            "grows": any(grows(p) for p in plugins), "growth_events": _growth_events(plugins),
            "peak_memory_mb": (torch.cuda.max_memory_allocated(device) / 2**20
                               if device.type == "cuda" else None),
            "memory_before_mb": baseline_mb}


def timing(device: torch.device, budget: Budget, experiment: Path,
           overrides: list[str]) -> dict:
    """Train time and peak GPU memory of every strategy of ``experiment``, ratio to the first;
    one untimed experience first, so that CUDA/cuDNN start-up is no strategy's cost."""
    plan, bench = _plan(experiment, budget.train_subset, overrides)
    names = list(plan.presets)
    warm_up, _ = _strategy(plan, names[0], bench, device)
    warm_up.train(bench.train_stream[0])
    del warm_up
    strategies = {n: _time_strategy(plan, n, bench, device, budget) for n in names}
    first = strategies[names[0]]
    for result in strategies.values():
        result["time_ratio"] = result["train_s"] / first["train_s"]
        if result["peak_memory_mb"] is not None:
            result["memory_ratio"] = result["peak_memory_mb"] / first["peak_memory_mb"]
    # a growing strategy that did not grow was not timed doing what it is measured for
    return {"ok": all(s["growth_events"] > 0 for s in strategies.values() if s["grows"]),
            "experiment": experiment.stem, "overrides": overrides,
            "experiences": budget.experiences, "train_subset": budget.train_subset,
            "clock": "cuda_events" if device.type == "cuda" else "perf_counter",
            "strategies": strategies}


def _amp_dtypes(device: torch.device) -> list[torch.dtype]:
    if device.type != "cuda":
        return [torch.bfloat16]      # what CPU autocast runs
    return ([torch.bfloat16] if torch.cuda.is_bf16_supported() else []) + [torch.float16]


@torch.no_grad()
def _accuracy(model: nn.Module, dataset, *, samples: int, device) -> float:
    model.eval()
    correct = 0
    subset = dataset.subset(range(min(samples, len(dataset))))
    for x, y, *_ in torch.utils.data.DataLoader(subset, batch_size=256):
        correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
    return correct / len(subset)


class _LossTrace(SupervisedPlugin, supports_distributed=True):
    """Each training iteration's (unscaled) loss: the strategy's ``loss`` is reset to zero when
    its training ends, so reading it afterwards checks nothing."""

    def __init__(self):
        super().__init__()
        self.values: list[float] = []

    def after_training_iteration(self, strategy, **kwargs):
        self.values.append(float(strategy.loss.detach()))


def amp(device: torch.device, budget: Budget, experiment: Path, overrides: list[str],
        margin: float, strategy: str = "sparsegrow") -> dict:
    """The ``strategy`` preset on two experiences (growth happens in the second) in float32 and
    under each autocast dtype: growth, a finite loss at every iteration, and accuracy on the
    experience just learned within ``margin`` of float32's (on the first, forgetting on a
    class-incremental stream makes the gap noise; it is recorded)."""
    from avalanche.training import Naive

    plan, bench = _plan(experiment, budget.amp_train_subset, overrides)
    if strategy not in plan.presets:
        raise SparseGrowError(f"the amp section trains '{strategy}', which {experiment} does not "
                              f"list (it has {', '.join(plan.presets)})")
    steps = list(bench.train_stream)[:2]
    runs = {}
    for dtype in [torch.float32, *_amp_dtypes(device)]:
        cls = Naive if dtype == torch.float32 else amp_template(Naive, AMP_NAMES[dtype])
        learner, plugins = _strategy(plan, strategy, bench, device, cls=cls)
        losses = _LossTrace()
        learner.plugins.append(losses)
        for exp in steps:
            learner.train(exp)
        run = {"accuracy_per_experience": [
                   _accuracy(learner.model, bench.test_stream[e.current_experience].dataset,
                             samples=budget.eval_samples, device=device) for e in steps],
               "final_loss": losses.values[-1],
               "iterations": len(losses.values),
               "finite_losses": all(map(math.isfinite, losses.values)),
               "growth_events": _growth_events(plugins)}
        if getattr(learner, "scaler", None) is not None:
            run["grad_scale"] = float(learner.scaler.get_scale())
        runs[str(dtype).removeprefix("torch.")] = run
    reference = runs.pop("float32")
    for run in runs.values():
        run["accuracy_gap"] = (run["accuracy_per_experience"][-1]
                               - reference["accuracy_per_experience"][-1])
        run["ok"] = (run["growth_events"] > 0 and run["finite_losses"]
                     and abs(run["accuracy_gap"]) <= margin)
    return {"ok": all(r["ok"] for r in runs.values()) and reference["growth_events"] > 0,
            "strategy": strategy, "margin": margin, "float32": reference, "autocast": runs}
