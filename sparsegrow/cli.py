"""Command line: ``sparsegrow run experiments/X.yaml [key=value ...]``,
``sparsegrow bench <name> [args]``, ``sparsegrow report`` and ``sparsegrow inspect <model>``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sparsegrow.errors import SparseGrowError


# installed by `sparsegrow[experiments]`, not by the core: a command that needs one says so
_HARNESS = ("hydra", "hydra_zen", "hydra_plugins", "omegaconf", "mnist")


class RunsFailed(Exception):
    """Some runs of an experiment failed; each was already reported on its own line."""


def _run(args) -> None:
    from sparsegrow.runner.launch import LauncherConfigError, aggregate, launch, plan_jobs
    from sparsegrow.runner.search import SWEEPER, plan_search, search

    # --multirun may also come after the experiment, among the overrides
    overrides = [o for o in args.overrides if o not in ("-m", "--multirun")]
    if SWEEPER in overrides:
        fixed, searched, hydra_args = plan_search(args.experiment, overrides)
        out = search(args.experiment, fixed, searched, hydra_args)
        print(f"best: {out.read_text()}written: {out}")
        return
    jobs, hydra_args = plan_jobs(args.experiment, overrides)   # every point validated
    for i, job in enumerate(jobs):      # Hydra's log names jobs by number only
        print(f"job={i}: {job.directory}/{job.strategy}/seed{job.seed}")
    try:
        outcomes = launch(args.experiment, jobs, hydra_args)
    except LauncherConfigError:   # no job started
        raise
    except BaseException:
        # a job crashed (the launcher ran the others first) or the launch was interrupted:
        # what finished is summarized before the error shows
        _print_results(aggregate(jobs))
        raise
    failed = _print_results(aggregate(jobs, outcomes))
    if failed:
        raise RunsFailed(f"{len(failed)} of {len(jobs)} run(s) failed (lines above); "
                         f"the summaries leave them out")


def _print_results(results) -> list[str]:
    """Print each experiment's table, folders and W&B runs; the failed runs' lines."""
    failed = []
    for result in results:
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
        failed += result.failed
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return failed


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


def _inspect(args) -> None:
    import torch

    from sparsegrow.inspection import (inspect_model, layer_table, load_model, parse_options,
                                       zoo_table)

    if args.zoo:
        print(zoo_table())
        return
    if args.model is None:
        raise SparseGrowError("inspect needs a model (or --zoo)")
    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
    except ValueError:
        raise SparseGrowError(f"--input-shape must be integers like 3,32,32, got "
                              f"'{args.input_shape}'") from None
    model = load_model(args.model, input_shape=shape, n_classes=args.classes,
                       **parse_options(args.options))
    print(layer_table(inspect_model(model, torch.randn(2, *shape))))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparsegrow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an experiment YAML (every strategy × seed)")
    run.add_argument("experiment", help="experiments/<name>.yaml")
    run.add_argument("-m", "--multirun", action="store_true",
                     help="accepted as in Hydra; comma lists always sweep")
    run.add_argument("overrides", nargs=argparse.REMAINDER,
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
    inspect = sub.add_parser("inspect", help="which layers of a model grow and how each one is "
                                             "protected")
    inspect.add_argument("model", nargs="?", help="small_cnn, torchvision:<name> or "
                                                  "package.module:callable")
    inspect.add_argument("options", nargs="*", help="model keyword arguments key=value")
    inspect.add_argument("--input-shape", default="3,32,32",
                         help="shape of one sample (default 3,32,32)")
    inspect.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    inspect.add_argument("--zoo", action="store_true",
                         help="the summary table of the README's architectures")
    inspect.set_defaults(func=_inspect)
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
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _HARNESS:
            raise
        print(f"error: sparsegrow {args.command} needs the experiment harness ({err.name} is "
              f"not installed): pip install 'sparsegrow[experiments]'", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
