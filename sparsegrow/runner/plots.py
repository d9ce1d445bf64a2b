"""PNG plots of an experiment from its result files (matplotlib, Agg backend: no display)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from sparsegrow.runner.checkpoint import atomic_write_bytes  # noqa: E402


def _matrix(run: Path) -> np.ndarray:
    with open(run / "accuracy_matrix.csv") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[float(v) for v in row[1:]] for row in rows])


def _timeline(run: Path) -> list[dict]:
    with open(run / "timeline.csv") as f:
        return list(csv.DictReader(f))


def _save(fig, path: Path) -> Path:
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    atomic_write_bytes(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_experiment(experiment_dir: Path, strategies: list[str], seeds: list[int]) -> list[Path]:
    """Forgetting curves and accuracy heatmap per strategy (mean over its finished seeds),
    average accuracy after each experience for all strategies, and parameter count with growth
    events; runs that did not finish are left out."""
    experiment_dir = Path(experiment_dir)
    plots = experiment_dir / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    fig_avg, ax_avg = plt.subplots(figsize=(7, 4.5))
    fig_par, ax_par = plt.subplots(figsize=(7, 4.5))
    curves = {}
    for strategy in strategies:
        runs = [experiment_dir / strategy / f"seed{s}" for s in seeds]
        runs = [r for r in runs if (r / "metrics.json").is_file()]
        if not runs:
            continue
        R = np.mean([_matrix(r) for r in runs], axis=0) * 100
        if R.shape[0] == R.shape[1]:   # joint training has only its final row
            curves[strategy] = R
            fig, ax = plt.subplots(figsize=(7, 4.5))
            _forgetting_curves(ax, R, strategy)
            written.append(_save(fig, plots / f"forgetting_{strategy}.png"))
        fig, ax = plt.subplots(figsize=(6, 5))
        im = ax.imshow(R, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set(xlabel="evaluated experience", ylabel="after training experience",
               title=f"Accuracy matrix (%): {strategy}")
        fig.colorbar(im, ax=ax)
        written.append(_save(fig, plots / f"heatmap_{strategy}.png"))
        timelines = [_timeline(r) for r in runs]
        steps = [int(t["experience"]) + 1 for t in timelines[0]]
        avg = np.mean([[float(t["seen_avg_acc"]) * 100 for t in tl] for tl in timelines], axis=0)
        ax_avg.plot(steps, avg, marker="o", ms=3, label=strategy)
        params = np.mean([[float(t["params"]) for t in tl] for tl in timelines], axis=0)
        line, = ax_par.plot(steps, params, marker="o", ms=3, label=strategy)
        for event in json.loads((runs[0] / "events.json").read_text()):
            ax_par.axvline(event["experience"] + 0.75, color=line.get_color(), alpha=0.25, lw=1)
    ax_avg.set(xlabel="experiences trained", ylabel="average accuracy on seen experiences (%)",
               title="Average accuracy after each experience", ylim=(0, 100))
    if ax_avg.lines:
        ax_avg.legend(fontsize=8)
    written.append(_save(fig_avg, plots / "average_accuracy.png"))
    ax_par.set(xlabel="experiences trained", ylabel="parameters",
               title="Parameter count (faint lines: growth events, seed 0)")
    if ax_par.lines:
        ax_par.legend(fontsize=8)
    written.append(_save(fig_par, plots / "growth_params.png"))
    if curves:
        written.append(_all_forgetting_curves(curves, plots / "forgetting_curves.png"))
    _remove_orphans(experiment_dir, written)
    return written


def _remove_orphans(experiment_dir: Path, written: list[Path]) -> None:
    """Delete the per-strategy plots of strategies with no finished run left in the folder (a
    variant removed from the experiment, its runs deleted), so that the plots folder shows only
    what the results support. Plots of strategies that still have runs stay, even when this
    launch did not run them."""
    for png in (experiment_dir / "plots").glob("*.png"):
        kind, _, strategy = png.stem.partition("_")
        if (png not in written and kind in ("forgetting", "heatmap") and strategy != "curves"
                and not any((experiment_dir / strategy).glob("seed*/metrics.json"))):
            png.unlink()


def _forgetting_curves(ax, R: np.ndarray, strategy: str, legend: bool = True) -> None:
    """Accuracy (%) on each experience j from when it is trained on (``R[j:, j]``)."""
    x = np.arange(1, R.shape[0] + 1)
    for j in range(R.shape[1]):
        ax.plot(x[j:], R[j:, j], marker="o", ms=3, label=f"exp {j}")
    ax.set(xlabel="experiences trained", ylabel="test accuracy (%)",
           title=f"Forgetting curves: {strategy}", ylim=(0, 100))
    if legend and R.shape[1] <= 10:    # a long stream's legend would hide its curves
        ax.legend(fontsize=7, ncol=2)


def _all_forgetting_curves(curves: dict[str, np.ndarray], path: Path) -> Path:
    """One panel per strategy, on the same axes, to compare them at a glance."""
    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.4 * rows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, (strategy, R) in zip(axes.flat, curves.items()):
        _forgetting_curves(ax, R, strategy, legend=ax is axes.flat[0])   # same colours in all
        ax.set_title(strategy, fontsize=10)
        ax.tick_params(labelbottom=True)   # shared x: a panel above an empty slot needs ticks
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    return _save(fig, path)
