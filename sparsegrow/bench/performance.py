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

import yaml

from sparsegrow.errors import SparseGrowError
from sparsegrow.runner.checkpoint import atomic_write_text


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
    metrics = json.loads((out_dir / name / strategy / "seed0" / "metrics.json").read_text())
    return {"train_time_s": metrics["train_time_s"], "peak_rss_mb": usage.ru_maxrss / 1024,
            "timings": metrics["plugin_timings_s"]}


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
        out[strategy] = med
    reference = out[strategies[0]]
    for med in out.values():
        med["time_ratio"] = med["train_time_s"] / reference["train_time_s"]
        med["rss_ratio"] = med["peak_rss_mb"] / reference["peak_rss_mb"]
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
                      "growth events (their own column). Peak RSS is the whole process's (about "
                      "1 GB of it is Python, Avalanche and MNIST before training starts)."}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"\n{'strategy':<14}{'train s':>9}{'× ' + args.strategies[0]:>12}{'peak MB':>9}"
          f"{'×':>7}  passes (s)")
    for name, r in strategies.items():
        print(f"{name:<14}{r['train_time_s']:9.1f}{r['time_ratio']:12.2f}{r['peak_rss_mb']:9.0f}"
              f"{r['rss_ratio']:7.2f}  {r['timings']}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
