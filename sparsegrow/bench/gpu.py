"""GPU acceptance check: the CUDA path proved in one command, in under 8 minutes.

Run: ``sparsegrow bench gpu [--out results/gpu/gpu_check.json] [--dry-run]
[--sections cuda_tests agreement timing amp] [--train-subset N] [--experiences K]
[--override KEY=VALUE ...] [--tests PATH ...] [--amp-margin 0.05]`` (or ``make gpu-check``).

Four sections, each under its own time limit (a section over its limit, or one that raises,
is recorded in the JSON with its error and the next section still runs):

=============  =========  ===============================================================
section        budget     what it does
=============  =========  ===============================================================
cuda_tests     150 s      ``python -m pytest -m "cuda and not slow"`` in a subprocess; counts
agreement       60 s      CPU vs CUDA (TF32 off) of a growth event (random init, CPU draws),
                          an on-data initialisation (same batches) and one protected SGD
                          step (subspace bases, projection of weights and momentum); the
                          largest difference against stated tolerances (:data:`TOLERANCES`),
                          the projection's host syncs, its old-input change with TF32 on
timing         150 s      every strategy of the experiment (naive, sparsegrow) on its first
                          ``--experiences`` experiences, ``--train-subset`` samples each:
                          train time (CUDA events), ratio to the first, peak GPU memory
amp             60 s      two experiences with the sparsegrow preset in float32 and under
                          autocast (bf16 if the GPU has it, and fp16 + GradScaler): growth
                          happened, finite loss, accuracy on the experience just learned
                          within ``--amp-margin`` of float32's
=============  =========  ===============================================================

The budgets add up to 7 minutes; the rest of the 8 is start-up (imports, CUDA context, MNIST).
(A dry run's limits are looser: the CPU is slower and there is no GPU time to save.)
The GPU defaults train Split MNIST 5 with the reduced ResNet-18
(``experiments/performance_split_mnist_5_resnet18_reduced.yaml``) on 2,000 samples per
experience. Without a CUDA device the command stops with one line unless ``--dry-run`` runs
every section on the CPU (agreement is then CPU vs CPU through the same code, at small sizes):
that is how the command itself is tested on CPU-only machines.

The JSON (one object) has ``ok``, the machine, the budget and one entry per section with its
``status`` (``ok``, ``failed``: ran and a check did not hold, ``error``: raised or timed out),
``seconds`` and its numbers; the command exits 1 when a section is not ``ok``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sparsegrow.errors import SparseGrowError
from sparsegrow.runner.checkpoint import atomic_write_text

SECTIONS = ("cuda_tests", "agreement", "timing", "amp")
EXPERIMENT = Path("experiments/performance_split_mnist_5_resnet18_reduced.yaml")


@dataclass(frozen=True)
class Budget:
    """Sizes and time limits of one check (module docstring)."""

    train_subset: int        # training samples per experience (timing, amp)
    experiences: int         # experiences trained by the timing section
    eval_samples: int        # test samples per experience for the amp section's accuracy
    timeouts: dict           # {section: seconds}


GPU_BUDGET = Budget(train_subset=2000, experiences=5, eval_samples=1000,
                    timeouts={"cuda_tests": 150, "agreement": 60, "timing": 150, "amp": 60})
# no GPU time to save on the CPU, and the CPU is slower: the limits only stop a hang
DRY_BUDGET = Budget(train_subset=64, experiences=2, eval_samples=100,
                    timeouts={"cuda_tests": 600, "agreement": 300, "timing": 600, "amp": 600})


@dataclass(frozen=True)
class Tolerance:
    """``|other − reference| ≤ atol + rtol·|reference|`` entrywise."""

    rtol: float
    atol: float


# Chosen before any GPU ran this code (the first run's max_abs_diff will tell how much room
# they leave). A growth event draws its random rows on the CPU generator on both devices: only
# float32 rounding of the copies and of the outgoing weights' scale differs. An on-data init goes
# through cross-covariance sums and an eigendecomposition, whose directions move by about
# ε·‖M‖/gap. One protected step runs conv/matmul kernels that sum in another order, then a
# projection that removes most of the update.
TOLERANCES = {"growth": Tolerance(rtol=1e-5, atol=1e-6),
              "on_data": Tolerance(rtol=1e-3, atol=1e-4),
              "protected_step": Tolerance(rtol=1e-4, atol=1e-5)}
# A protected layer's response to its old inputs (M·B) may move by this much in one step.
OLD_INPUT_ATOL = 1e-4


class SectionTimeout(Exception):
    """A section ran past its time budget."""


@contextmanager
def deadline(seconds: float):
    """Raise :class:`SectionTimeout` in the main thread after ``seconds`` (a CUDA kernel or a
    subprocess wait in progress is interrupted when control returns to Python; ``subprocess.run``
    then kills its child). Elsewhere than the main thread there is no limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise SectionTimeout(f"ran past its {seconds:g} s budget")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_section(fn, timeout: float) -> dict:
    """``fn()``'s result dict under ``timeout`` with its ``status`` and ``seconds``; an
    exception becomes ``status: error`` with its message, so the next section still runs."""
    start = time.perf_counter()
    try:
        with deadline(timeout):
            result = fn()
        status = "ok" if result.get("ok", True) else "failed"
    except Exception as err:     # recorded, not raised: the remaining sections must still run
        result = {"error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc(limit=-4)}
        status = "error"
    return {"status": status, "seconds": time.perf_counter() - start, "timeout_s": timeout,
            **result}


# ---------------------------------------------------------------- cuda_tests

def _junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"],
            "skipped": counts["skipped"]}


def cuda_tests(paths: list[str], *, require_passes: bool) -> dict:
    """The CUDA-marked tests (``-m "cuda and not slow"``) in a subprocess, counted from its
    JUnit report; without ``require_passes`` (dry run) all of them may be skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        # a module that fails to import is counted as an error, and the CUDA tests still run
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda and not slow", "-q",
               "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--junitxml={report}", *paths]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        counts = _junit_counts(report) if report.is_file() else {}
    ok = (proc.returncode == 0 and counts.get("failed", 1) == 0 and counts.get("errors", 1) == 0
          and (counts.get("passed", 0) > 0 or not require_passes))
    out = {"ok": ok, "returncode": proc.returncode, **counts,
           "command": " ".join(cmd[1:]).replace(str(report), "<junit.xml>")}
    if not ok:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out


# ---------------------------------------------------------------- agreement

def compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor],
            tol: Tolerance) -> dict:
    """Compare two ``{name: tensor}`` results entrywise within ``tol`` (``reference`` is the
    CPU's). ``ok`` is False when a name is missing on one side, shapes differ, or any entry is
    off by more than ``atol + rtol·|reference|`` (NaN counts as off)."""
    problems = []
    worst, max_diff = None, 0.0
    for name in sorted(reference.keys() | other.keys()):
        if name not in reference or name not in other:
            problems.append(f"{name}: only in the {'reference' if name in reference else 'other'}")
            continue
        a = reference[name].detach().cpu().double()
        b = other[name].detach().cpu().double()
        if a.shape != b.shape:
            problems.append(f"{name}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            continue
        diff = (b - a).abs()
        d = float(diff.max()) if diff.numel() else 0.0
        if math.isnan(d):
            d = math.inf
        if d > max_diff or worst is None:
            worst, max_diff = name, d
        if not bool((diff <= tol.atol + tol.rtol * a.abs()).all()):
            problems.append(f"{name}: max |diff| {d:.3g}")
    return {"ok": not problems, "max_abs_diff": max_diff, "worst": worst, **asdict(tol),
            "problems": problems[:10]}


@contextmanager
def tf32(enabled: bool):
    """TF32 in CUDA matmuls and cuDNN convs on or off (full float32), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


SHAPE, CLASSES, BATCH, UNITS = (1, 12, 12), 4, 32, 3


def _small_cnn(device: torch.device) -> nn.Module:
    from sparsegrow.models import SmallCNN

    torch.manual_seed(0)    # built on the CPU: the same weights on every device
    return SmallCNN(input_shape=SHAPE, n_classes=CLASSES, width=6, hidden=24).to(device)


def _batches(device: torch.device, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(BATCH, *SHAPE, generator=g).to(device),
             torch.randint(0, CLASSES, (BATCH,), generator=g).to(device)) for _ in range(n)]


def _snapshot(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        out = {"output": model(x).cpu()}
    return {**out, **{k: v.detach().cpu() for k, v in model.state_dict().items()}}


def growth_event(device: torch.device) -> dict[str, torch.Tensor]:
    """Every expandable pair of a small CNN (BatchNorm, conv→flatten→linear) widened by
    :data:`UNITS` with random init from a seeded CPU generator."""
    from sparsegrow.growth import Grower

    model = _small_cnn(device)
    x = _batches(device, 1)[0][0]
    grower = Grower(model, example=x)
    generator = torch.Generator().manual_seed(2)
    for pair in grower.pairs:
        grower.widen(pair.producer, UNITS, init="random", generator=generator)
    return _snapshot(model, x)


def on_data_init(device: torch.device) -> dict[str, torch.Tensor]:
    """Every pair widened in one growth event with on-data init from the same two batches."""
    from sparsegrow.growth import Grower

    model = _small_cnn(device)
    batches = _batches(device, 2)
    grower = Grower(model, example=batches[0][0])
    grower.widen_many({p.producer: UNITS for p in grower.pairs}, init="on_data",
                      batches=batches, loss_fn=F.cross_entropy,
                      generator=torch.Generator().manual_seed(2))
    return _snapshot(model, batches[0][0])


def up_to_row_signs(reference: dict[str, torch.Tensor],
                    other: dict[str, torch.Tensor]) -> float:
    """Largest difference once each row (first dimension) of ``other`` takes the sign that
    matches ``reference``: eigenvectors have no sign, so an on-data init that fails
    :func:`compare` only by flipped rows shows up here as a small number."""
    worst = 0.0
    for name, a in reference.items():
        b = other.get(name)
        if b is None or b.shape != a.shape or a.dim() == 0 or not a.is_floating_point():
            continue
        a, b = a.double().reshape(len(a), -1), b.double().reshape(len(b), -1)
        sign = torch.where((a * b).sum(1, keepdim=True) < 0, -1.0, 1.0)
        worst = max(worst, float((a - sign * b).abs().max()))
    return worst


def _host_syncs(fn, device: torch.device) -> int | None:
    """How many synchronising CUDA calls ``fn`` makes (None off CUDA)."""
    if device.type != "cuda":
        fn()
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


@torch.no_grad()
def _old_input_change(before: dict[str, torch.Tensor], model: nn.Module, bases) -> float:
    """max |ΔM·B| over the protected (ungrouped) layers: how much a layer's response to its
    old inputs moved, M = [W | b] as the subspace memory sees it."""
    worst = 0.0
    for name, basis in bases.items():
        module = model.get_submodule(name)
        if basis.dim() != 2:
            continue
        delta = (module.weight - before[f"{name}.weight"]).flatten(1)
        if module.bias is not None:
            delta = torch.cat([delta, (module.bias - before[f"{name}.bias"])[:, None]], 1)
        worst = max(worst, float((delta @ basis.to(delta.dtype)).abs().max()))
    return worst


def protected_step(device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """One SGD step with momentum on new data after subspace bases were taken on old data, then
    the projection (SparseGrowPlugin's default protection): weights, momentum, projectors B·Bᵀ
    (sign-free) and basis sizes; plus the step's host syncs and old-input change."""
    from sparsegrow.protection.subspace import SubspaceMemory

    model = _small_cnn(device)
    *old, new = _batches(device, 3)
    memory = SubspaceMemory(energy=0.9)
    memory.update(model, [x for x, _ in old])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    F.cross_entropy(model(new[0]), new[1]).backward()
    optimizer.step()
    syncs = _host_syncs(lambda: memory.project_(model, optimizer), device)
    result = {f"param/{k}": v.detach().cpu() for k, v in model.named_parameters()}
    result.update({f"momentum/{k}": optimizer.state[p]["momentum_buffer"].cpu()
                   for k, p in model.named_parameters()})
    result.update({f"projector/{k}": (b @ b.T).cpu() for k, b in memory.bases.items()
                   if b.dim() == 2})
    result.update({f"basis_size/{k}": torch.tensor(float(v)) for k, v in memory.sizes().items()})
    facts = {"host_syncs_in_projection": syncs,
             "old_input_change": _old_input_change(before, model, memory.bases)}
    return result, facts


def _protected_step_tf32(device: torch.device) -> float:
    """The protected step's old-input change with TF32 allowed (a user's default on CUDA)."""
    with tf32(True):
        return protected_step(device)[1]["old_input_change"]


def agreement(device: torch.device) -> dict:
    """The three CPU-vs-``device`` comparisons (TF32 off)."""
    cpu = torch.device("cpu")
    with tf32(False):
        growth = growth_event(cpu), growth_event(device)
        on_data = on_data_init(cpu), on_data_init(device)
        (reference, facts_cpu), (other, facts) = protected_step(cpu), protected_step(device)
    out = {"growth": compare(*growth, TOLERANCES["growth"]),
           "on_data": {**compare(*on_data, TOLERANCES["on_data"]),
                       "max_abs_diff_up_to_row_signs": up_to_row_signs(*on_data)}}
    step = compare(reference, other, TOLERANCES["protected_step"])
    step.update({"old_input_atol": OLD_INPUT_ATOL,
                 "old_input_change_cpu": facts_cpu["old_input_change"],
                 "old_input_change_device": facts["old_input_change"],
                 "host_syncs_in_projection": facts["host_syncs_in_projection"],
                 "old_input_change_device_tf32_on": (_protected_step_tf32(device)
                                                     if device.type == "cuda" else None)})
    # TF32 (a CUDA user's default) must not loosen the projection either
    changes = [step[k] for k in ("old_input_change_cpu", "old_input_change_device",
                                 "old_input_change_device_tf32_on") if step[k] is not None]
    step["ok"] = step["ok"] and max(changes) <= OLD_INPUT_ATOL
    out["protected_step"] = step
    out["ok"] = all(out[k]["ok"] for k in ("growth", "on_data", "protected_step"))
    return out


# ---------------------------------------------------------------- timing and amp

def _plan(experiment: Path, budget: Budget, overrides: list[str]):
    from sparsegrow.config import load_experiment
    from sparsegrow.runner.run import build_benchmark_for

    plan = load_experiment(experiment,
                           [f"++benchmark.train_subset={budget.train_subset}", *overrides])
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
    return {"train_s": sum(per_experience), "per_experience_s": per_experience,
            "iterations": int(strategy.clock.train_iterations),
            "grows": any(grows(p) for p in plugins), "growth_events": _growth_events(plugins),
            "peak_memory_mb": (torch.cuda.max_memory_allocated(device) / 2**20
                               if device.type == "cuda" else None),
            "memory_before_mb": baseline_mb}


def timing(device: torch.device, budget: Budget, experiment: Path,
           overrides: list[str]) -> dict:
    """Train time and peak GPU memory of every strategy of ``experiment``, ratio to the first;
    one untimed experience first, so that CUDA/cuDNN start-up is no strategy's cost."""
    plan, bench = _plan(experiment, budget, overrides)
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


class Autocast:
    """Mixin for an Avalanche SGD template (Naive): forward and loss under ``torch.autocast``
    one iteration at a time (an autocast region around a whole epoch keeps a cache of cast
    weights that goes stale after each optimizer step), and a GradScaler for float16. The
    plugins' callbacks run outside autocast, in float32."""

    def __init__(self, *, amp_dtype: torch.dtype, **kwargs):
        super().__init__(**kwargs)
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(self.device.type) \
            if amp_dtype == torch.float16 else None

    def forward(self):
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            return super().forward()

    def criterion(self):
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            return super().criterion()

    def backward(self):
        if self.scaler is None:
            return super().backward()
        self.scaler.scale(self.loss).backward(retain_graph=self.retain_graph)

    def optimizer_step(self):
        if self.scaler is None:
            return super().optimizer_step()
        self.scaler.step(self.optimizer)     # skipped when the scaled gradients overflowed
        self.scaler.update()


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


def amp(device: torch.device, budget: Budget, experiment: Path, overrides: list[str],
        margin: float, strategy: str = "sparsegrow") -> dict:
    """The ``strategy`` preset on two experiences (growth happens in the second) in float32 and
    under each autocast dtype: growth, a finite loss, and accuracy on the experience just
    learned within ``margin`` of float32's (on the first, forgetting on a class-incremental
    stream makes the gap noise; it is recorded)."""
    from avalanche.training import Naive

    plan, bench = _plan(experiment, budget, overrides)
    if strategy not in plan.presets:
        raise SparseGrowError(f"the amp section trains '{strategy}', which {experiment} does not "
                              f"list (it has {', '.join(plan.presets)})")
    amp_cls = type("AutocastNaive", (Autocast, Naive), {})
    steps = list(bench.train_stream)[:2]
    runs = {}
    for dtype in [torch.float32, *_amp_dtypes(device)]:
        cls, kwargs = (None, {}) if dtype == torch.float32 else (amp_cls, {"amp_dtype": dtype})
        learner, plugins = _strategy(plan, strategy, bench, device, cls=cls, **kwargs)
        for exp in steps:
            learner.train(exp)
        run = {"accuracy_per_experience": [
                   _accuracy(learner.model, bench.test_stream[e.current_experience].dataset,
                             samples=budget.eval_samples, device=device) for e in steps],
               "final_loss": float(learner.loss), "growth_events": _growth_events(plugins)}
        if getattr(learner, "scaler", None) is not None:
            run["grad_scale"] = float(learner.scaler.get_scale())
        runs[str(dtype).removeprefix("torch.")] = run
    reference = runs.pop("float32")
    for run in runs.values():
        run["accuracy_gap"] = (run["accuracy_per_experience"][-1]
                               - reference["accuracy_per_experience"][-1])
        run["ok"] = (run["growth_events"] > 0 and math.isfinite(run["final_loss"])
                     and abs(run["accuracy_gap"]) <= margin)
    return {"ok": all(r["ok"] for r in runs.values()) and reference["growth_events"] > 0,
            "strategy": strategy, "margin": margin, "float32": reference, "autocast": runs}


# ---------------------------------------------------------------- report

def _summary(name: str, section: dict) -> str:
    if section["status"] == "error":
        return section["error"].splitlines()[0][:90]
    if name == "cuda_tests":
        return (f"{section['passed']} passed, {section['failed']} failed, "
                f"{section['errors']} errors, {section['skipped']} skipped")
    if name == "agreement":
        return "; ".join(f"{k} max abs diff {section[k]['max_abs_diff']:.2g} "
                         f"(atol {section[k]['atol']:g}, rtol {section[k]['rtol']:g})"
                         for k in TOLERANCES)
    if name == "timing":
        parts = []
        for k, s in section["strategies"].items():
            memory = "" if s["peak_memory_mb"] is None else f", {s['peak_memory_mb']:.0f} MB"
            parts.append(f"{k} {s['train_s']:.2f} s ({s['time_ratio']:.2f}×{memory})")
        return "; ".join(parts)
    fp32 = section["float32"]["accuracy_per_experience"][-1]
    return "; ".join(f"{k} last-experience acc {r['accuracy_per_experience'][-1]:.3f} "
                     f"(fp32 {fp32:.3f}), {r['growth_events']} growth"
                     for k, r in section["autocast"].items())


def table(report: dict) -> str:
    """Markdown table: one row per section that ran."""
    lines = ["| section | status | seconds | result |", "|---|---|---:|---|"]
    for name, section in report["sections"].items():
        lines.append(f"| {name} | {section['status']} | {section['seconds']:.1f} | "
                     f"{_summary(name, section).replace('|', '/')} |")
    return "\n".join(lines)


def run_checks(*, device: torch.device, budget: Budget, sections, experiment: Path,
               overrides: list[str], test_paths: list[str], amp_margin: float) -> dict:
    work = {"cuda_tests": lambda: cuda_tests(test_paths, require_passes=device.type == "cuda"),
            "agreement": lambda: agreement(device),
            "timing": lambda: timing(device, budget, experiment, overrides),
            "amp": lambda: amp(device, budget, experiment, overrides, amp_margin)}
    start = time.perf_counter()
    results = {}
    for name in SECTIONS:
        if name in sections:
            print(f"{name} (at most {budget.timeouts[name]} s) ...", flush=True)
            results[name] = run_section(work[name], budget.timeouts[name])
    return {"ok": all(s["status"] == "ok" for s in results.values()),
            "device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else "cpu (dry run)"),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "budget": asdict(budget), "total_s": time.perf_counter() - start,
            "sections": results}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="sparsegrow bench gpu",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/gpu/gpu_check.json"))
    parser.add_argument("--dry-run", action="store_true",
                        help="run every section on the CPU at small sizes (no CUDA needed)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--experiment", type=Path, default=EXPERIMENT)
    parser.add_argument("--train-subset", type=int,
                        help="training samples per experience (timing, amp)")
    parser.add_argument("--experiences", type=int, help="experiences the timing section trains")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="experiment override, e.g. ++model.width=4 (repeatable)")
    parser.add_argument("--tests", nargs="+", default=["tests"],
                        help="test paths searched for CUDA-marked tests")
    parser.add_argument("--amp-margin", type=float, default=0.05,
                        help="largest accuracy gap of autocast to float32 (fraction)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        raise SparseGrowError("no CUDA device: torch sees none (torch.cuda.is_available() is "
                              "False); use --dry-run to run the check's steps on the CPU")
    budget = DRY_BUDGET if args.dry_run else GPU_BUDGET
    sizes = {k: v for k, v in (("train_subset", args.train_subset),
                               ("experiences", args.experiences)) if v is not None}
    if any(v < 1 for v in sizes.values()):
        raise SparseGrowError(f"--train-subset and --experiences must be >= 1, got {sizes}")
    budget = replace(budget, **sizes)
    device = torch.device("cpu" if args.dry_run else "cuda")
    report = run_checks(device=device, budget=budget, sections=args.sections,
                        experiment=args.experiment, overrides=args.override,
                        test_paths=args.tests, amp_margin=args.amp_margin)
    given = sys.argv[1:] if argv is None else argv
    report = {"command": " ".join(["sparsegrow bench gpu", *given]), "dry_run": args.dry_run,
              **report}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"written: {args.out}")
    if not report["ok"]:
        bad = [n for n, s in report["sections"].items() if s["status"] != "ok"]
        sys.exit(f"GPU check: not ok: {', '.join(bad)} (details in {args.out})")


if __name__ == "__main__":
    main()
