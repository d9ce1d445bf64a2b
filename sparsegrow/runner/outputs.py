"""Results files: per run (matrix, metrics, timeline, events, config) and per experiment
(summary over seeds as JSON, CSV and a markdown table). Every file is written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from sparsegrow.runner import metrics as M
from sparsegrow.runner.checkpoint import atomic_write_text

# metric key → (column title, scale for display; 0 = integer count); accuracies in %.
SUMMARY_COLUMNS = {
    "acc": ("ACC (%)", 100), "bwt": ("BWT (%)", 100), "forgetting": ("Forgetting (%)", 100),
    "la": ("LA (%)", 100), "gift_at_growth": ("GIFt at growth (%)", 100),
    "params_start": ("Params start", 0), "params_end": ("Params end", 0),
    "param_overhead": ("Param overhead (%)", 100), "train_time_s": ("Train time (s)", 1),
}
SUMMARY_KEYS = [*SUMMARY_COLUMNS, "eval_time_s", "n_growth_events"]
# a run folder's marker of a failed (diverged) run: {"error": one line}
FAILED = "failed.json"


def run_metrics(state: dict, events: list[dict], memory: dict, *, strategy: str,
                seed: int) -> dict:
    """Everything ``metrics.json`` holds, from the run's recorded state."""
    R = state["rows"]
    timeline = state["timeline"]
    params_end = timeline[-1]["params"]
    gifts = [e["GIFt/at_growth"] for e in events if "GIFt/at_growth" in e]
    return {
        "strategy": strategy, "seed": seed,
        "acc": M.final_accuracy(R), "bwt": M.backward_transfer(R),
        "forgetting": M.forgetting(R), "la": M.learning_accuracy(R),
        "gift_at_growth": M.gift_at_growth(gifts), "n_growth_events": len(events),
        "params_start": state["params_start"], "params_end": params_end,
        # less the entries growth keeps at zero (growth in blocks, sparse init); runs of 0.2
        # did not record it
        "params_end_in_use": timeline[-1].get("params_in_use", params_end),
        "param_overhead": M.parameter_overhead(state["params_start"], params_end),
        "train_time_s": sum(t["train_time_s"] for t in timeline),
        "eval_time_s": sum(t["eval_time_s"] for t in timeline),
        "train_time_per_experience_s": [t["train_time_s"] for t in timeline],
        # cumulative training iterations after each experience (growth events name theirs)
        "train_iterations_per_experience": [t.get("train_iterations") for t in timeline],
        "seen_avg_acc_per_experience": M.seen_average(R),
        "after_experience": M.after_each_experience(R),
        "plugin_timings_s": timeline[-1]["timings"],
        "memory": memory,
    }


def _csv(rows: list[list], header: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_run_files(out: Path, *, config: dict, state: dict, events: list[dict],
                    result: dict) -> None:
    out = Path(out)
    R = state["rows"]
    atomic_write_text(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    atomic_write_text(out / "accuracy_matrix.csv",
                      _csv([[t["experience"], *row] for t, row in zip(state["timeline"], R)],
                           ["trained_exp", *[f"exp_{j}" for j in range(len(R[-1]))]]))
    widths = sorted({k for t in state["timeline"] for k in t["widths"]})
    timings = sorted({k for t in state["timeline"] for k in t["timings"]})
    # runs checkpointed by runners before 'protection' was recorded lack it: blank cells
    protected = sorted({k for t in state["timeline"] for k in t.get("protection", {})})
    header = ["experience", "seen_avg_acc", "avg_acc", "params", "params_in_use",
              "train_time_s", "eval_time_s",
              "growth_events", *[f"time_{k}_s" for k in timings], *[f"width/{k}" for k in widths],
              *protected]
    rows = [[t["experience"], t["seen_avg_acc"], t["avg_acc"], t["params"],
             t.get("params_in_use", t["params"]), t["train_time_s"],
             t["eval_time_s"], t["growth_events"], *[t["timings"].get(k, "") for k in timings],
             *[t["widths"].get(k, "") for k in widths],
             *[t.get("protection", {}).get(k, "") for k in protected]]
            for t in state["timeline"]]
    atomic_write_text(out / "timeline.csv", _csv(rows, header))
    atomic_write_text(out / "events.json", _json(events))
    atomic_write_text(out / "metrics.json", _json(result))   # last: marks the run finished


def write_failure(out: Path, message: str) -> None:
    atomic_write_text(Path(out) / FAILED, _json({"error": message}))


def run_status(run: Path) -> str:
    """``finished``, ``failed: <reason>`` or ``missing`` (not run, running, or killed)."""
    if (run / "metrics.json").is_file():
        return "finished"
    if (run / FAILED).is_file():
        return "failed: " + json.loads((run / FAILED).read_text())["error"]
    return "missing"


def summarize(experiment_dir: Path, strategies: list[str], seeds: list[int]) -> dict:
    """Mean ± std over the finished seeds of every strategy's metrics, from the runs'
    metrics.json; ``seeds`` of an entry are the finished ones, ``unfinished`` maps every other
    requested seed to its :func:`run_status`."""
    experiment_dir = Path(experiment_dir)
    summary = {}
    for strategy in strategies:
        runs, unfinished = [], {}
        for seed in seeds:
            run = experiment_dir / strategy / f"seed{seed}"
            status = run_status(run)
            if status == "finished":
                runs.append(json.loads((run / "metrics.json").read_text()))
            else:
                unfinished[f"seed{seed}"] = status
        stats = {}
        for key in SUMMARY_KEYS:
            mean, std = M.mean_std([r[key] for r in runs])
            stats[key] = {"mean": mean, "std": std}
        curves = [r["seen_avg_acc_per_experience"] for r in runs]
        summary[strategy] = {"seeds": [r["seed"] for r in runs], "metrics": stats,
                             "seen_avg_acc_per_experience":
                                 [M.mean_std(list(v))[0] for v in zip(*curves)],
                             "per_seed": {f"seed{r['seed']}": {k: r[k] for k in SUMMARY_KEYS}
                                          for r in runs}}
        if unfinished:
            summary[strategy]["unfinished"] = unfinished
    return summary


def unfinished_lines(summary: dict) -> list[str]:
    """One line per run of the summary that did not finish, saying why."""
    return [f"{strategy} {seed}: {status}" for strategy, entry in summary.items()
            for seed, status in entry.get("unfinished", {}).items()]


def _cell(stat: dict, scale: float) -> str:
    if stat["mean"] is None:
        return "–"
    if scale == 0:
        return f"{stat['mean']:,.0f} ± {stat['std']:,.0f}"
    return f"{stat['mean'] * scale:.2f} ± {stat['std'] * scale:.2f}"


def markdown_table(summary: dict, columns=None) -> str:
    """The comparison table; ``columns`` picks keys of :data:`SUMMARY_COLUMNS` (default all)."""
    columns = {k: SUMMARY_COLUMNS[k] for k in (columns or SUMMARY_COLUMNS)}
    titles = [title for title, _ in columns.values()]
    lines = ["| Strategy | " + " | ".join(titles) + " |",
             "|---" * (len(titles) + 1) + "|"]
    for strategy, entry in summary.items():
        cells = [_cell(entry["metrics"][k], scale) for k, (_, scale) in columns.items()]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(experiment_dir: Path, summary: dict, *, title: str) -> str:
    """summary.json, .csv and .md; the markdown says which runs are not in the means."""
    experiment_dir = Path(experiment_dir)
    atomic_write_text(experiment_dir / "summary.json", _json(summary))
    header = ["strategy"] + [f"{k}_{s}" for k in SUMMARY_KEYS for s in ("mean", "std")]
    rows = [[strategy] + [entry["metrics"][k][s] for k in SUMMARY_KEYS for s in ("mean", "std")]
            for strategy, entry in summary.items()]
    atomic_write_text(experiment_dir / "summary.csv", _csv(rows, header))
    table = markdown_table(summary)
    counts = sorted({len(entry["seeds"]) for entry in summary.values()})
    text = (f"# {title}\n\nMean ± std over {'/'.join(map(str, counts))} finished seed(s); "
            f"accuracies in %.\n\n{table}")
    missing = unfinished_lines(summary)
    if missing:
        text += "\nNot in the means (not finished):\n\n" + "".join(f"- {m}\n" for m in missing)
    atomic_write_text(experiment_dir / "summary.md", text)
    return table
