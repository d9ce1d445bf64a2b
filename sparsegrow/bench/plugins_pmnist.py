"""Permuted MNIST with the SparseGrow plugins and baselines, in one process (ratios comparable).

    python -m sparsegrow.bench.plugins_pmnist --split validation --experiences 10 \\
        --method naive=naive --method 'ewc100=ewc:{"ewc_lambda": 100}' \\
        --method 'sg=sparsegrow:{"gating": "subspace"}' --out results.json

Setting of issue 3: MLP 2×400, SGD lr 0.01 momentum 0.9, batch 128, one epoch per experience,
seed 0, one torch thread (the machine's cores are shared; one thread makes time ratios stable).
For every method: ACC, BWT, Forgetting, LA (in %), parameter overhead, training seconds (the
``strategy.train`` calls only), the ratio to the first ``naive`` method, and the plugins' own
``timings`` (growth / importance / gating passes) with the share of the growth and importance
passes in the training time.

Methods are ``label=kind[:json kwargs]`` with kind one of ``naive``, ``ewc``, ``lwf``,
``replay``, ``freezing``, ``growth``, ``sparsegrow``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings

import torch

from sparsegrow.errors import ConfigError
from sparsegrow.growth import count_parameters


def _plugin(kind: str, kwargs: dict):
    from avalanche.training.plugins import EWCPlugin, LwFPlugin, ReplayPlugin

    from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin

    kinds = {"ewc": EWCPlugin, "lwf": LwFPlugin, "replay": ReplayPlugin,
             "freezing": FreezingPlugin, "growth": GrowthPlugin, "sparsegrow": SparseGrowPlugin}
    if kind == "naive":
        return None
    if kind not in kinds:
        raise ConfigError(f"unknown method kind '{kind}' (choose naive or one of "
                          f"{', '.join(kinds)})")
    return kinds[kind](**kwargs)


def parse_method(text: str) -> tuple[str, str, dict]:
    """``label=kind[:json]`` → (label, kind, kwargs)."""
    label, _, spec = text.partition("=")
    kind, _, raw = spec.partition(":")
    if not label or not kind:
        raise ConfigError(f"method '{text}' must look like label=kind or label=kind:{{json}}")
    try:
        kwargs = json.loads(raw) if raw else {}
    except json.JSONDecodeError as err:
        raise ConfigError(f"method '{label}': kwargs are not valid JSON ({err})") from None
    return label, kind, kwargs


def summarise(matrix: list[list[float]]) -> dict[str, float]:
    """ACC, BWT, Forgetting and LA (in %) from R[i][j] (row i: after training experience i)."""
    t = len(matrix)
    final = matrix[-1]
    acc = sum(final) / t
    la = sum(matrix[j][j] for j in range(t)) / t
    bwt = sum(final[j] - matrix[j][j] for j in range(t - 1)) / max(t - 1, 1)
    forgetting = sum(max(matrix[l][j] for l in range(j, t - 1)) - final[j]
                     for j in range(t - 1)) / max(t - 1, 1)
    return {k: round(100 * v, 2) for k, v in
            {"ACC": acc, "BWT": bwt, "Forgetting": forgetting, "LA": la}.items()}


def run_method(kind: str, kwargs: dict, *, bench, seed: int = 0) -> dict:
    """Train one method on ``bench`` (Avalanche benchmark) and measure it."""
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    from sparsegrow.models import build_model

    torch.manual_seed(seed)
    model = build_model("mlp", input_shape=(1, 28, 28), n_classes=10, hidden=(400, 400))
    start_params = count_parameters(model)
    plugin = _plugin(kind, dict(kwargs))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    strategy = Naive(model=model, optimizer=optimizer, train_mb_size=128, train_epochs=1,
                     eval_mb_size=1000, plugins=[plugin] if plugin else None,
                     evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))
    matrix, train_seconds = [], 0.0
    for i, experience in enumerate(bench.train_stream):
        began = time.perf_counter()
        strategy.train(experience)
        train_seconds += time.perf_counter() - began
        results = strategy.eval(bench.test_stream[: i + 1])
        matrix.append([results[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{j:03d}"]
                       for j in range(i + 1)])
    out = summarise(matrix)
    out.update({"overhead": round((count_parameters(model) - start_params) / start_params, 4),
                "train_s": round(train_seconds, 2),
                "timings": {k: round(v, 3) for k, v in getattr(plugin, "timings", {}).items()},
                "final_row": [round(100 * v, 2) for v in matrix[-1]],
                "diagonal": [round(100 * matrix[j][j], 2) for j in range(len(matrix))]})
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--experiences", type=int, default=10)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", action="append", required=True,
                        help="label=kind[:json kwargs]; repeatable; the fastest naive run is "
                             "the time reference")
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    from sparsegrow.benchmarks import build_benchmark

    methods = [parse_method(m) for m in args.method]
    bench = build_benchmark("permuted_mnist", n_experiences=args.experiences, seed=args.seed,
                            eval_split=args.split, train_subset=args.train_subset)
    results = {}
    for label, kind, kwargs in methods:
        results[label] = {"kind": kind, "kwargs": kwargs,
                          **run_method(kind, kwargs, bench=bench, seed=args.seed)}
        print(json.dumps({"method": label, **results[label]}), flush=True)
    # Time reference: the fastest naive run of this invocation (list naive first and last to
    # bracket the others; the fastest is the one least disturbed by other jobs on the machine).
    naive = [r["train_s"] for r in results.values() if r["kind"] == "naive"]
    for r in results.values():
        if naive:
            r["time_ratio"] = round(r["train_s"] / min(naive), 3)
        plugin_s = sum(r["timings"].get(k, 0.0) for k in ("growth", "importance"))
        r["growth_importance_share"] = round(plugin_s / r["train_s"], 4)
    print(f"{'method':24s} {'ACC':>6s} {'BWT':>7s} {'Forg':>6s} {'LA':>6s} {'overhd':>7s} "
          f"{'train_s':>8s} {'ratio':>6s} {'grow+imp':>8s}")
    for label, r in results.items():
        print(f"{label:24s} {r['ACC']:6.2f} {r['BWT']:7.2f} {r['Forgetting']:6.2f} "
              f"{r['LA']:6.2f} {r['overhead']:7.3f} {r['train_s']:8.1f} "
              f"{r.get('time_ratio', float('nan')):6.3f} {r['growth_importance_share']:8.3f}")
    report = {"split": args.split, "experiences": args.experiences, "seed": args.seed,
              "train_subset": args.train_subset, "results": results}
    if args.out:
        folder = os.path.dirname(os.path.abspath(args.out))
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
            json.dump(report, f, indent=1)
        os.replace(f.name, args.out)   # never leave a half-written results file
    return report


if __name__ == "__main__":
    main()
