import copy
import csv
import json
import time

import pytest
import torch
import yaml
from torch import nn

import sparsegrow
from sparsegrow.cli import main
from sparsegrow.config import load_experiment
from sparsegrow.errors import ConfigError
from sparsegrow.runner import run_dir, run_one, shared_arrays
from sparsegrow.runner.run import CHECKPOINT, FAIL_AFTER_ENV, SimulatedKill

RUN_FILES = ("config.yaml", "accuracy_matrix.csv", "metrics.json", "timeline.csv", "events.json")


def test_tiny_run_writes_every_file(make_experiment, capsys):
    path = make_experiment(strategies=["naive", "sparsegrow", "joint"], seeds=[0, 1])
    assert main(["run", str(path)]) == 0
    printed = capsys.readouterr().out
    exp = path.parent.parent / "results" / "tiny"
    for strategy in ("naive", "sparsegrow", "joint"):
        for seed in (0, 1):
            folder = exp / strategy / f"seed{seed}"
            for name in RUN_FILES:
                assert (folder / name).is_file(), folder / name
            assert not (folder / CHECKPOINT).exists()
            metrics = json.loads((folder / "metrics.json").read_text())
            with open(folder / "accuracy_matrix.csv") as f:
                rows = list(csv.reader(f))[1:]
            assert len(rows) == (1 if strategy == "joint" else 3)
            assert metrics["acc"] == pytest.approx(sum(map(float, rows[-1][1:])) / 3)
    for name in ("summary.json", "summary.csv", "summary.md"):
        assert (exp / name).is_file()
    for name in ("average_accuracy.png", "growth_params.png", "heatmap_joint.png",
                 "forgetting_naive.png", "heatmap_sparsegrow.png", "forgetting_curves.png"):
        assert (exp / "plots" / name).stat().st_size > 1000
    summary = json.loads((exp / "summary.json").read_text())
    accs = [json.loads((exp / "naive" / f"seed{s}" / "metrics.json").read_text())["acc"]
            for s in (0, 1)]
    assert summary["naive"]["metrics"]["acc"]["mean"] == pytest.approx(sum(accs) / 2)
    assert "| sparsegrow |" in printed and "| sparsegrow |" in (exp / "summary.md").read_text()

    grown = json.loads((exp / "sparsegrow" / "seed0" / "metrics.json").read_text())
    events = json.loads((exp / "sparsegrow" / "seed0" / "events.json").read_text())
    assert grown["n_growth_events"] == len(events) == 2      # once per experience after the first
    assert grown["params_end"] == events[-1]["params_after"] > grown["params_start"]
    assert all("GIFt/at_growth" in e for e in events)
    assert grown["gift_at_growth"] == pytest.approx(
        sum(e["GIFt/at_growth"] for e in events) / len(events))
    with open(exp / "sparsegrow" / "seed0" / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    assert [int(t["params"]) for t in timeline][-1] == grown["params_end"]
    assert float(timeline[-1]["time_growth_s"]) > 0
    # default gating is subspace: protected input directions per layer, growing; no masks
    dims = [int(t["subspace_dims/fc1"]) for t in timeline]
    assert 0 < dims[0] < dims[-1] <= 36          # fc1 reads the 1×6×6 input: 36 directions
    assert not [k for k in timeline[0] if k.startswith("frozen/")]
    # nothing grew after the last experience: silencing changes nothing there, exactly
    with open(exp / "sparsegrow" / "seed0" / "accuracy_matrix.csv") as f:
        final = [float(v) for v in list(csv.reader(f))[-1][1:]]
    silenced = grown["later_units_silenced"]
    assert len(silenced["final_row"]) == 3
    assert silenced["final_row"][-1] == pytest.approx(final[-1], abs=1e-12)
    assert silenced["acc"] == pytest.approx(sum(silenced["final_row"]) / 3)
    naive = json.loads((exp / "naive" / "seed0" / "metrics.json").read_text())
    assert naive["later_units_silenced"] is None


def test_birth_gate_routing_is_recorded_and_gates_the_final_row(make_experiment):
    plan = load_experiment(make_experiment(strategies=["sparsegrow"]),
                           ["strategy.plugins.sparsegrow.growth.birth_gate=true"])
    folder, _ = run_one(plan, "sparsegrow,sparsegrow.growth.birth_gate=true", 0)
    result = json.loads((folder / "metrics.json").read_text())
    routing = result["birth_gate_routing"]["per_experience"]
    assert len(routing) == 3 and all(0 <= r <= 1 for r in routing)
    assert result["birth_gate_routing"]["acc"] == pytest.approx(sum(routing) / 3)
    with open(folder / "accuracy_matrix.csv") as f:
        final = [float(v) for v in list(csv.reader(f))[-1][1:]]
    # an experience whose every input is judged its own is evaluated with exactly the units
    # that existed when it was learned: the gated row is the silenced row there
    for got, silenced, judged in zip(final, result["later_units_silenced"]["final_row"],
                                     routing):
        if judged == 1.0:
            assert got == pytest.approx(silenced, abs=1e-12)
    assert routing.count(1.0) >= 2


def test_timeline_records_frozen_fraction_per_parameter(make_experiment):
    plan = load_experiment(make_experiment(strategies=["sparsegrow"]),
                           ["strategy.plugins.sparsegrow.protection.gating=mask"])
    folder, _ = run_one(plan, "sparsegrow,sparsegrow.protection.gating=mask", 0)
    with open(folder / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    assert not [k for k in timeline[0] if k.startswith("subspace_dims/")]
    # freeze_ratio 0.3 of the free entries after each experience (fc1.weight: width × 36)
    frozen = [float(t["frozen/fc1.weight"]) * int(t["width/fc1"]) * 36 for t in timeline]
    assert frozen[0] == pytest.approx(0.3 * 16 * 36, abs=1)
    assert frozen[0] < frozen[1] < frozen[2]


def test_train_time_leaves_out_the_gift_measurement(make_experiment, monkeypatch):
    """GIFt's evaluations at growth are measurement: recorded apart, not as training time."""
    from sparsegrow.plugins.gift import GIFtMetric

    samples = GIFtMetric._samples

    def slow_samples(self, index, device):   # inside the metric's timed block
        time.sleep(0.5)
        return samples(self, index, device)

    monkeypatch.setattr(GIFtMetric, "_samples", slow_samples)
    plan = load_experiment(make_experiment(strategies=["sparsegrow"]))
    folder, _ = run_one(plan, "sparsegrow", 0)
    with open(folder / "timeline.csv") as f:
        timeline = list(csv.DictReader(f))
    gift = [float(t["time_gift_s"]) for t in timeline]   # cumulative
    # experience 2 grows once: before and after, on 2 earlier experiences each (4 × 0.5 s)
    assert gift[0] == 0 and gift[2] - gift[1] >= 2.0
    assert float(timeline[2]["train_time_s"]) < 2.0


def _snapshot(folder):
    return {name: (folder / name).read_bytes() for name in RUN_FILES if name != "metrics.json"}


def _comparable(metrics):
    return {k: v for k, v in metrics.items()
            if "time" not in k and k not in ("memory", "plugin_timings_s")}


# sparsegrow: grown shapes, masks and optimizer moments (sparsegrow_blocks: with the blocks'
# structural zeros, their count and the locked rows); the others: Avalanche's plugins, whose
# state (replay buffer, EWC importances, LwF's previous model, SI's trajectories) is checkpointed
# as their attributes; cumulative: the concatenated dataset of Avalanche's Cumulative, rebuilt;
# der, er_ace, er_aml: the template's own replay buffer (DER's with the stored logits); agem, mir:
# their buffers, their memory samplers (iterators) made again at the resume; generative_replay:
# its generator (a VAE for MNIST's shape) with its optimizer's moments and the replay flags.
_CUSTOM = {"mir": {"name": "mir", "preset": "mir",
                   "plugins": {"mir": {"subsample": 16, "batch_size_mem": 8}}},
           "sparsegrow_blocks": {"name": "sparsegrow_blocks", "preset": "sparsegrow",
                                 "plugins": {"sparsegrow": {"growth": {"lateral": False}}}}}
_LENGTH = {"sparsegrow_blocks": 4}
_STREAMS = {  # MIR replays classes absent from the experience's last minibatch: new classes
    "mir": {"scenario": "class", "n_classes": 2}, "generative_replay": {"image_shape": [1, 28, 28]}}


@pytest.mark.parametrize("strategy, share", [
    ("sparsegrow", False), ("sparsegrow_blocks", False), ("replay_ewc", False), ("lwf", False),
    ("si", False), ("cumulative", False), ("der", False), ("er_ace", False), ("er_aml", False),
    ("agem", False), ("mir", False), ("generative_replay", False),
    ("replay_ewc", True),   # the replay buffer's data as references to the rebuilt benchmark
])
def test_kill_and_resume_gives_identical_results(make_experiment, monkeypatch, strategy, share):
    if share:   # the synthetic stream's tensors are small: share all of them
        monkeypatch.setattr(shared_arrays, "MIN_BYTES", 0)
    plan = load_experiment(make_experiment(
        strategies=[_CUSTOM.get(strategy, strategy)], n_experiences=_LENGTH.get(strategy, 3),
        benchmark=_STREAMS.get(strategy)))
    reference, _ = run_one(plan, strategy, 0)
    expected = _snapshot(reference)
    expected_metrics = json.loads((reference / "metrics.json").read_text())
    for path in reference.iterdir():
        path.unlink()

    # killed after experience 1, then again after experience 2 (a resumed run resumes); blocks:
    # after experience 3 of 4, once a second block has structural zeros
    for kill_after in ("0", "2" if strategy == "sparsegrow_blocks" else "1"):
        monkeypatch.setenv(FAIL_AFTER_ENV, kill_after)
        with pytest.raises(SimulatedKill):
            run_one(plan, strategy, 0)
        assert (reference / CHECKPOINT).is_file() and not (reference / "metrics.json").exists()
    monkeypatch.delenv(FAIL_AFTER_ENV)
    folder, ran = run_one(plan, strategy, 0)
    assert ran and folder == reference
    resumed = _snapshot(folder)
    assert resumed["accuracy_matrix.csv"] == expected["accuracy_matrix.csv"]
    assert resumed["events.json"] == expected["events.json"]
    assert resumed["config.yaml"] == expected["config.yaml"]
    assert _comparable(json.loads((folder / "metrics.json").read_text())) \
        == _comparable(expected_metrics)
    if strategy.startswith("sparsegrow"):
        assert json.loads(expected["events.json"])   # growth happened after the resume point


def test_finished_run_is_skipped_and_untouched(make_experiment):
    plan = load_experiment(make_experiment(strategies=["naive"], n_experiences=2))
    folder, ran = run_one(plan, "naive", 0)
    assert ran
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    again, ran = run_one(plan, "naive", 0)
    assert not ran and again == folder
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before
    assert run_dir(plan, "naive", 0) == folder
    # the same strategy and seed under another config must not pass for finished
    other = load_experiment(plan.path, ["training.lr=0.1"])
    with pytest.raises(ConfigError, match="holds results of a different config"):
        run_one(other, "naive", 0)
    # adding a seed or a strategy to the experiment keeps its finished runs
    assert run_one(load_experiment(plan.path, ["seeds=[0,5]"]), "naive", 0) == (folder, False)


def _rewrite_config(folder, config) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def test_a_run_recorded_by_another_version_is_compared_by_what_it_ran(make_experiment):
    plan = load_experiment(make_experiment(strategies=["sparsegrow"], n_experiences=2))
    folder, _ = run_one(plan, "sparsegrow", 0)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["version"] == sparsegrow.__version__
    # as 0.1 recorded it: no version, no keys the schema gained since at their defaults
    # (training.amp, preset.base_args), the plugin's keywords as 0.1 spelled them
    old = copy.deepcopy(config)
    for section in (old, old["experiment"]):
        del section["training"]["amp"]
    del old["version"], old["preset"]["base_args"]
    old["preset"]["plugins"] = [{"name": "sparsegrow", "energy": 0.97}]
    _rewrite_config(folder, old)
    assert run_one(plan, "sparsegrow", 0) == (folder, False)
    # another plugin, or another training value, is another run whatever the version
    for key, value in (("plugins", [{"name": "ewc"}]), ("base", "der")):
        _rewrite_config(folder, {**old, "preset": {**old["preset"], key: value}})
        with pytest.raises(ConfigError, match="holds results of a different config"):
            run_one(plan, "sparsegrow", 0)
    _rewrite_config(folder, {**old, "training": {**old["training"], "lr": 0.5}})
    with pytest.raises(ConfigError, match="holds results of a different config"):
        run_one(plan, "sparsegrow", 0)
    # within one minor version every keyword counts
    same_minor = copy.deepcopy(config)
    same_minor["preset"]["plugins"][0]["budget"] = 3.0
    _rewrite_config(folder, same_minor)
    with pytest.raises(ConfigError, match="holds results of a different config"):
        run_one(plan, "sparsegrow", 0)


def test_plots_of_removed_variants_go_and_plots_of_other_runs_stay(make_experiment):
    """A variant dropped from the experiment, with its runs deleted, leaves no plot behind;
    a variant that still has runs keeps its plots when a launch runs only the others."""
    path = make_experiment(strategies=["naive", "sparsegrow"], seeds=[0])
    assert main(["run", str(path)]) == 0
    plots = path.parent.parent / "results" / "tiny" / "plots"
    (plots / "heatmap_removed.png").write_bytes(b"stale")
    (plots / "forgetting_removed.png").write_bytes(b"stale")
    assert main(["run", str(path), "strategy=naive"]) == 0
    assert not (plots / "heatmap_removed.png").exists()
    assert not (plots / "forgetting_removed.png").exists()
    assert (plots / "heatmap_sparsegrow.png").stat().st_size > 1000
    assert (plots / "heatmap_naive.png").stat().st_size > 1000


def test_a_variant_adds_plugins_after_its_presets_own(make_experiment):
    variant = {"name": "der_sparsegrow", "preset": "der",
               "add_plugins": [{"name": "sparsegrow", "budget": 2.0}]}
    plan = load_experiment(make_experiment(strategies=[variant], n_experiences=2))
    preset = plan.presets["der_sparsegrow"]
    assert preset.base.value == "der" and preset.base_args.mem_size == 500
    assert [p.name for p in preset.plugins] == ["sparsegrow"]
    folder, _ = run_one(plan, "der_sparsegrow", 0)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["params_end"] > metrics["params_start"]   # the added plugin grew the model


def test_er_aml_features_are_the_model_less_its_head_and_follow_growth():
    from sparsegrow.growth import Grower
    from sparsegrow.models import MLP
    from sparsegrow.runner.build import feature_extractor

    model = MLP(input_shape=(1, 4, 4), n_classes=3, hidden=[5])
    features = feature_extractor(model)
    assert list(dict(features.named_children())) == ["flatten", "fc1", "relu1"]
    x = torch.zeros(2, 1, 4, 4)
    Grower(model, example=x).widen("fc1", 2, init="zero_out")
    assert features(x).shape == (2, 7)     # the grown width: the modules are the model's

    class Net(torch.nn.Module):      # a forward of its own: no module is "the head"
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

    with pytest.raises(ConfigError, match=r"^base er_aml needs a feature extractor, .*\(the model "
                       r"is a Net\); use another base or an MLP model$"):
        feature_extractor(Net())


def test_er_aml_with_less_than_a_minibatch_per_class_in_its_buffer_is_one_line():
    """Avalanche 0.6.0's ER_AML loops forever on an empty per-class loader (seen: a 500-sample
    buffer, batch 128, at Split MNIST's second experience)."""
    from types import SimpleNamespace

    from sparsegrow.runner.build import check_er_aml

    experiences = [SimpleNamespace(dataset=SimpleNamespace(targets=SimpleNamespace(
        uniques={2 * i, 2 * i + 1}))) for i in range(5)]
    bench = SimpleNamespace(train_stream=experiences)
    check_er_aml({"mem_size": 1280}, batch_size=128, bench=bench)
    with pytest.raises(ConfigError, match=r"^base er_aml: mem_size 500 leaves 50 samples per "
                       r"class among the stream's 10 classes, fewer than training.batch_size "
                       r"128: .* set mem_size to at least 1280 or lower the batch size$"):
        check_er_aml({"mem_size": 500}, batch_size=128, bench=bench)
    with pytest.raises(ConfigError, match="mem_size 200 leaves 20 samples"):   # its default
        check_er_aml({}, batch_size=128, bench=bench)


def test_lfl_runs_on_the_features_before_the_head(make_experiment):
    """Avalanche's LFL needs its BaseModel interface (get_features): the runner's MLP gives the
    head's input and declares itself one."""
    from sparsegrow.runner.run import build_benchmark_for, build_model_for

    plan = load_experiment(make_experiment(strategies=["lfl"], n_experiences=2))
    bench = build_benchmark_for(plan, 0)
    model = build_model_for(plan, bench)
    x = torch.randn(3, *bench.input_shape)
    assert torch.equal(model.head(model.get_features(x)), model(x))
    folder, _ = run_one(plan, "lfl", 0)
    assert json.loads((folder / "metrics.json").read_text())["acc"] > 0


def test_lfl_on_a_model_without_features_is_one_line():
    from sparsegrow.runner.build import features_interface

    with pytest.raises(ConfigError, match=r"^plugin lfl compares the model's features \(its "
                       r"get_features method\), which the model \(Linear\) lacks; use the mlp "
                       r"or small_cnn model$"):
        features_interface(nn.Linear(4, 2))


def test_generative_replays_generator_trains_without_console_logs(make_experiment, capfd):
    """Avalanche's generator strategy logs with its default evaluator (text and progress bars);
    the runner's own progress bar is the run's only console output."""
    plan = load_experiment(make_experiment(strategies=["generative_replay"], n_experiences=2,
                                           benchmark=_STREAMS["generative_replay"]))
    run_one(plan, "generative_replay", 0)
    out, err = capfd.readouterr()
    assert "training phase" not in out + err and "generative_replay seed0" in err


def test_generative_replay_on_inputs_its_generator_cannot_take_is_one_line(make_experiment):
    """Avalanche's GenerativeReplay builds an MLP VAE for 1×28×28 inputs, whatever the
    benchmark; on the synthetic stream's 1×6×6 it would fail at its first replay."""
    plan = load_experiment(make_experiment(strategies=["generative_replay"]))
    with pytest.raises(ConfigError, match=r"^base generative_replay: Avalanche's generator \(its "
                       r"MLP VAE\) takes inputs of shape \(1, 28, 28\), the benchmark's are "
                       r"\(1, 6, 6\); use it on an MNIST benchmark$"):
        run_one(plan, "generative_replay", 0)


@pytest.mark.parametrize("preset, message", [
    ({"base": "der", "base_args": {"gamma": 1.0}, "plugins": []},
     "base_args.gamma is not a keyword of base der (it takes mem_size, batch_size_mem, alpha, "
     "beta)"),
    ({"base": "naive", "base_args": {"mem_size": 10}, "plugins": []},
     "base_args.mem_size is not a keyword of base naive (it takes none)"),
])
def test_a_base_keyword_the_template_lacks_is_one_line(make_experiment, tmp_path, preset,
                                                       message):
    local = tmp_path / "experiments" / "strategies"
    local.mkdir(parents=True)
    (local / "mine.yaml").write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError) as err:
        load_experiment(make_experiment(strategies=["mine"]))
    assert str(err.value) == f"{local / 'mine.yaml'}: {message}"


def test_an_added_plugin_with_a_bad_keyword_is_one_line(make_experiment):
    variant = {"name": "x", "preset": "der", "add_plugins": [{"name": "sparsegrow", "units": 3}]}
    with pytest.raises(ConfigError, match=r"tiny\.yaml: strategies\[0\]\.add_plugins\[0\]\.units: "
                       r"unknown keyword of SparseGrowPlugin \(accepted: layers, "):
        load_experiment(make_experiment(strategies=[variant]))


def test_a_job_stopped_by_a_one_line_error_is_reported_with_the_others(make_experiment, capsys):
    # SI cannot follow growth: the plugin refuses it at the first experience; the jobs after
    # it still run, and each refusal is one line of the launch's report
    refused = {"name": "si_with_sparsegrow", "preset": "si",
               "add_plugins": [{"name": "sparsegrow"}]}
    path = make_experiment(strategies=[refused, "naive"], seeds=[0, 1], n_experiences=2)
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    for seed in (0, 1):
        assert (f"failed: strategy si_with_sparsegrow, seed {seed}: SparseGrowPlugin grows the "
                f"model, which cannot be combined with SynapticIntelligencePlugin: SI "
                f"(SynapticIntelligencePlugin) stores flattened copies") in "\n".join(err)
    assert err[-1] == "error: 2 of 4 run(s) failed (lines above); the summaries leave them out"
    exp = path.parent.parent / "results" / "tiny"
    assert all((exp / "naive" / f"seed{s}" / "metrics.json").is_file() for s in (0, 1))

    # finished runs of another config: every job says so, none stops the others
    assert main(["run", str(path), "training.lr=0.2"]) == 1
    err = capsys.readouterr().err
    for seed in (0, 1):
        assert (f"failed: naive seed{seed}: {exp / 'naive' / f'seed{seed}'} holds results of a "
                f"different config than this run's") in err


def test_a_strategy_that_replaces_the_model_is_recorded_from_its_new_model(make_experiment,
                                                                           tmp_path):
    # GDumb trains a fresh copy of the initial model at each experience: the checkpoint, the
    # widths and the parameter count follow the strategy's model, not the one built first
    local = tmp_path / "experiments" / "strategies"
    local.mkdir(parents=True)
    (local / "gdumb.yaml").write_text(yaml.safe_dump(
        {"base": "naive", "plugins": [{"name": "gdumb", "mem_size": 40},
                                      {"name": "sparsegrow"}]}))
    plan = load_experiment(make_experiment(strategies=["gdumb"], n_experiences=2))
    folder, ran = run_one(plan, "gdumb", 0)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert ran and metrics["params_end"] > metrics["params_start"]
