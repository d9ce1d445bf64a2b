"""Command line: ``sparsegrow run experiments/X.yaml [key=value ...]``,
``sparsegrow bench <name> [args]`` and ``sparsegrow report``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from sparsegrow.errors import SparseGrowError


class RunsFailed(Exception):
    """Some runs of an experiment failed; each was already reported on its own line."""


def _run(args) -> None:
    from sparsegrow.config import load_experiment

    # Avalanche's own deprecation notices (e.g. ReplayPlugin's storage policy) are not the
    # user's to act on; they would break the progress bars.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="avalanche")
    # ReplayPlugin's storage policy warns from inside Avalanche on every experience; the
    # warning names Avalanche's own call, not anything in the user's config.
    warnings.filterwarnings("ignore", message="Call to deprecated function",
                            category=DeprecationWarning)

    plan = load_experiment(args.experiment, args.overrides)
    from sparsegrow.runner import run_experiment

    result = run_experiment(plan)
    print()
    print(result.table)
    print(f"results: {result.directory}/ (summary.md, summary.csv, summary.json, "
          f"<strategy>/seed<k>/)")
    print(f"plots:   {result.directory / 'plots'}/")
    if result.wandb_mode == "offline":
        print("W&B (offline runs; upload with `wandb sync <dir>`):")
        for location in result.wandb:
            print(f"  wandb sync {location}")
    elif result.wandb_mode == "online":
        print("W&B runs:")
        for location in result.wandb:
            print(f"  {location}")
    if result.skipped:
        print(f"{len(result.skipped)} run(s) were already finished and were not rerun.")
    for run in result.missing:      # e.g. being run by another process
        print(f"not finished yet, left out of the summary: {run}")
    for line in result.failed:
        print(f"failed: {line}", file=sys.stderr)
    if result.failed:
        raise RunsFailed(f"{len(result.failed)} of {result.n_runs} run(s) failed (lines above); "
                         f"the summary leaves them out")


def _bench(args) -> None:
    import sparsegrow.bench as bench

    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__))
    if args.name not in names:
        raise SparseGrowError(f"unknown benchmark script '{args.name}' (known: {', '.join(names)})")
    importlib.import_module(f"sparsegrow.bench.{args.name}").main(args.args)


def _report(args) -> None:
    from sparsegrow.report import build_report

    build_report(args.results, args.out, readme=args.readme)
    print(f"written: {args.out} and the results block of {args.readme} (from {args.results}/)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparsegrow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment YAML (every strategy × seed)")
    run.add_argument("experiment", help="experiments/<name>.yaml")
    run.add_argument("overrides", nargs="*",
                     help="key=value overrides, e.g. training.epochs=2 strategy=naive,sparsegrow "
                          "seed=0,1 strategy.plugins.sparsegrow.subspace_energy=0.95")
    run.set_defaults(func=_run)
    bench = sub.add_parser("bench", help="run a benchmark script of sparsegrow.bench")
    bench.add_argument("name")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=_bench)
    report = sub.add_parser("report", help="write RESULTS.md from the result files")
    report.add_argument("--results", default="results", help="results folder (default results)")
    report.add_argument("--out", default="RESULTS.md", help="report file (default RESULTS.md)")
    report.add_argument("--readme", default="README.md",
                        help="README whose results block is refreshed (default README.md)")
    report.set_defaults(func=_report)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except SparseGrowError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RunsFailed as err:     # the config was fine: exit 1, not a usage error's 2
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
