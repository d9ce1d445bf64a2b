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
                          train time (CUDA events), ratio to the first, peak GPU memory,
                          the plugins' own timings of their passes
amp             60 s      two experiences with the sparsegrow preset in float32 and under
                          autocast (bf16 if the GPU has it, and fp16 + GradScaler): growth
                          happened, a finite loss at every iteration, accuracy on the
                          experience just learned within ``--amp-margin`` of float32's
=============  =========  ===============================================================

The budgets add up to 7 minutes; the rest of the 8 is start-up (imports, CUDA context, MNIST).
(A dry run's limits are looser: the CPU is slower and there is no GPU time to save.)
The GPU defaults train Split MNIST 5 with the reduced ResNet-18
(``experiments/performance_split_mnist_5_resnet18_reduced.yaml``) on 2,000 samples per
experience for timing and 8,000 for amp (enough for float32 to converge: its accuracy is the
reference). Without a CUDA device the command stops with one line unless ``--dry-run`` runs
every section on the CPU (agreement is then CPU vs CPU through the same code, at small sizes):
that is how the command itself is tested on CPU-only machines.

The JSON (one object) has ``ok``, the machine, the budget and one entry per section with its
``status`` (``ok``, ``failed``: ran and a check did not hold, ``error``: raised or timed out),
``seconds`` and its numbers; the command exits 1 when a section is not ``ok``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from sparsegrow.errors import SparseGrowError
from sparsegrow.runner.checkpoint import atomic_write_text

from .agreement import TOLERANCES, agreement
from .cuda_tests import cuda_tests
from .sections import DRY_BUDGET, GPU_BUDGET, Budget, run_section
from .training import amp, timing

SECTIONS = ("cuda_tests", "agreement", "timing", "amp")
EXPERIMENT = Path("experiments/performance_split_mnist_5_resnet18_reduced.yaml")


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
                        help="training samples per experience (timing and amp)")
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
    if args.train_subset is not None:
        sizes["amp_train_subset"] = args.train_subset
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
