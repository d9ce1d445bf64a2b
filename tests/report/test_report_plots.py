"""Plots are not committed: the report draws the ones it links from the runs' files."""

import json

from sparsegrow.report import build_report

KEYS = ["acc", "bwt", "forgetting", "la", "gift_at_growth", "params_start", "params_end",
        "param_overhead", "train_time_s"]
SUMMARY = {"naive": {"seeds": [0], "metrics": {k: {"mean": 0.5, "std": 0.0} for k in KEYS}}}


def _experiment(folder, runs=True):
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(SUMMARY))
    if runs:
        run = folder / "naive" / "seed0"
        run.mkdir(parents=True)
        (run / "accuracy_matrix.csv").write_text("trained_exp,exp_0,exp_1\n0,0.9,0.1\n1,0.6,0.8\n")
        (run / "timeline.csv").write_text("experience,seen_avg_acc,params\n0,0.9,100\n1,0.7,120\n")
        (run / "events.json").write_text("[]")
        (run / "metrics.json").write_text("{}")


def test_missing_plots_are_drawn_from_the_runs_and_linked(tmp_path):
    results = tmp_path / "results"
    _experiment(results / "rotated_mnist_10")
    _experiment(results / "split_mnist_5", runs=False)
    text = build_report(results, tmp_path / "RESULTS.md")
    plots = results / "rotated_mnist_10" / "plots"
    drawn = sorted(p.name for p in plots.glob("*.png"))
    assert drawn == ["average_accuracy.png", "forgetting_curves.png", "forgetting_naive.png",
                     "growth_params.png", "heatmap_naive.png"]
    assert all((plots / name).read_bytes().startswith(b"\x89PNG") for name in drawn)
    assert ("Plots: [average_accuracy](results/rotated_mnist_10/plots/average_accuracy.png), "
            "[forgetting_curves](results/rotated_mnist_10/plots/forgetting_curves.png)") in text
    # a summary without run files has nothing to draw from: no plots, no links
    assert not (results / "split_mnist_5" / "plots").exists()
    assert "results/split_mnist_5/plots" not in text


def test_existing_plots_are_kept(tmp_path):
    results = tmp_path / "results"
    _experiment(results / "rotated_mnist_10")
    plots = results / "rotated_mnist_10" / "plots"
    plots.mkdir()
    (plots / "average_accuracy.png").write_bytes(b"drawn by the runner")
    text = build_report(results, tmp_path / "RESULTS.md")
    assert [p.name for p in plots.iterdir()] == ["average_accuracy.png"]
    assert (plots / "average_accuracy.png").read_bytes() == b"drawn by the runner"
    assert "Plots: [average_accuracy](results/rotated_mnist_10/plots/average_accuracy.png)\n" \
        in text
