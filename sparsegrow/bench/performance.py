"""Training time and peak memory of strategies on the same stream, as ratios to Naive.

Run: ``sparsegrow bench performance [--experiment experiments/permuted_mnist_10.yaml]
[--strategies naive ewc sparsegrow sparsegrow_lwf] [--repeats 1]
[--out results/performance/performance.json]``.

Each strategy runs through the project's runner (``sparsegrow run <experiment>
strategies=[<s>] seeds=[0]``, W&B off, results in a temporary folder) in its own process, one
after the other and round-robin over repeats, so that all of them see the same machine load and
each process's peak resident memory (``wait4``'s ``ru_maxrss``) belongs to that strategy alone.
Training time is the runner's own measurement of the ``train()`` calls, without evaluation and
without the GIFt metric's evaluations at growth events (a measurement a user's strategy need not
carry; reported in its own column); the growth and importance passes are the plugins'
``timings``. Torch runs on one thread.

For a strategy that grows, its extra time over the first strategy is split into its passes
(the plugins' timings), the share its bigger model explains (:mod:`.model_share`: one training
step of the model at every width it trained at, timed round-robin in this process, applied to
the first strategy's time per step over the iterations each width trained) and the rest (work
no timing covers, such as callbacks and batch bookkeeping, and the two runs' load difference).
Peak RSS includes what every run pays before training (Python, Avalanche's import, MNIST).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from sparsegrow.errors import SparseGrowError
from sparsegrow.runner.checkpoint import atomic_write_text

MEASUREMENTS = ("gift",)   # plugin timings that are measurement, left out of training time


def _run(experiment: Path, strategy: str, out_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "sparsegrow.cli", "run", str(experiment),
           f"strategies=[{strategy}]", "seeds=[0]", f"logging.output_dir={out_dir}",
           "logging.wandb.mode=disabled"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SparseGrowError(f"{strategy} failed: {stderr.strip().splitlines()[-1:]}")
    name = yaml.safe_load(experiment.read_text())["name"]
    folder = out_dir / name / strategy / "seed0"
    metrics = json.loads((folder / "metrics.json").read_text())
    events = json.loads((folder / "events.json").read_text())
    return {"train_time_s": metrics["train_time_s"], "peak_rss_mb": usage.ru_maxrss / 1024,
            "timings": metrics["plugin_timings_s"],
            "iterations": metrics["train_iterations_per_experience"][-1],
            "growth": [{"iteration": e["iteration"], "operations": e["operations"]}
                       for e in events]}


def _shares(experiment: Path, result: dict, reference: dict) -> dict:
    """What a growing strategy's extra time over the reference is made of: its passes (the
    plugins' timings), its bigger model (:mod:`.model_share`), and the rest."""
    from sparsegrow.bench.model_share import grown_models, model_share, step_ratios
    from sparsegrow.config import load_experiment

    models, input_shape, n_classes = grown_models(experiment, result["growth"])
    batch = load_experiment(experiment).experiment.training.batch_size
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *input_shape, generator=g)
    y = torch.randint(0, n_classes, (batch,), generator=g)
    torch.set_num_threads(1)   # as the runs (OMP_NUM_THREADS=1)
    ratios = step_ratios(models, x, y)
    model_s = model_share(ratios, [e["iteration"] for e in result["growth"]],
                          result["iterations"],
                          reference["train_time_s"] / reference["iterations"])
    passes = sum(v for k, v in result["timings"].items() if k not in MEASUREMENTS)
    extra = result["train_time_s"] - reference["train_time_s"]
    return {"step_ratios": ratios, "model_share_s": model_s, "passes_s": passes,
            "rest_s": extra - passes - model_s}


def measure(experiment: Path, strategies: list[str], repeats: int) -> dict:
    runs: dict[str, list[dict]] = {s: [] for s in strategies}
    for r in range(repeats):
        for strategy in strategies:
            with tempfile.TemporaryDirectory() as tmp:
                print(f"repeat {r + 1}/{repeats}: {strategy} ...", flush=True)
                runs[strategy].append(_run(experiment, strategy, Path(tmp)))
    out = {}
    for strategy, results in runs.items():
        med = {k: statistics.median(x[k] for x in results)
               for k in ("train_time_s", "peak_rss_mb")}
        keys = {k for x in results for k in x["timings"]}
        med["timings"] = {k: statistics.median(x["timings"].get(k, 0.0) for x in results)
                          for k in sorted(keys)}
        # the same seed grows at the same iterations in every repeat
        med["iterations"], med["growth"] = results[0]["iterations"], results[0]["growth"]
        out[strategy] = med
    reference = out[strategies[0]]
    for med in out.values():
        med["time_ratio"] = med["train_time_s"] / reference["train_time_s"]
        med["rss_ratio"] = med["peak_rss_mb"] / reference["peak_rss_mb"]
        if med["growth"]:
            med.update(_shares(experiment, med, reference))
        med["growth_iterations"] = [e["iteration"] for e in med.pop("growth")]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path,
                        default=Path("experiments/permuted_mnist_10.yaml"))
    parser.add_argument("--strategies", nargs="+",
                        default=["naive", "ewc", "sparsegrow", "sparsegrow_lwf"],
                        help="presets; ratios are to the first")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/performance/performance.json"))
    args = parser.parse_args(argv)
    strategies = measure(args.experiment, args.strategies, args.repeats)
    args_given = sys.argv[1:] if argv is None else argv
    command = " ".join(["sparsegrow bench performance", *args_given])
    report = {"experiment": args.experiment.stem, "command": command, "repeats": args.repeats,
              "strategies": strategies,
              "note": "Train time leaves out evaluation and the GIFt metric's evaluations at "
                      "growth events (their own column). model_share_s: the first strategy's "
                      "time per step × the grown models' extra step time (step_ratios, one "
                      "entry per width trained at), over the iterations each trained; passes_s: "
                      "the plugins' timings; rest_s: the remaining extra time. Peak RSS is the "
                      "whole process's (about 1 GB of it is Python, Avalanche and MNIST before "
                      "training starts)."}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"\n{'strategy':<14}{'train s':>9}{'× ' + args.strategies[0]:>12}{'peak MB':>9}"
          f"{'×':>7}  passes (s)")
    for name, r in strategies.items():
        print(f"{name:<14}{r['train_time_s']:9.1f}{r['time_ratio']:12.2f}{r['peak_rss_mb']:9.0f}"
              f"{r['rss_ratio']:7.2f}  {r['timings']}")
        if "model_share_s" in r:
            print(f"{'':<14}over {args.strategies[0]}: passes {r['passes_s']:.1f} s, bigger model "
                  f"{r['model_share_s']:.1f} s (final model's step "
                  f"{r['step_ratios'][-1]:.2f}×), rest {r['rest_s']:.1f} s")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
