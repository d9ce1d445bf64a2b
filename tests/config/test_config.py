from pathlib import Path

import pytest
import yaml

import sparsegrow.plugins as plugins
from sparsegrow.config import load_experiment, load_preset
from sparsegrow.config.registry import BASES
from sparsegrow.config.schema import Base
from sparsegrow.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").rglob("*.yaml"))
PRESETS = sorted((REPO / "strategies").glob("*.yaml"))

GOOD = {"name": "t", "benchmark": {"name": "synthetic", "n_experiences": 2},
        "model": {"name": "mlp", "hidden": [8]}, "strategies": ["naive"], "seeds": [0]}


def test_shipped_files_exist():
    assert len(EXPERIMENTS) >= 10 and len(PRESETS) >= 15


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_experiment_validates(path):
    plan = load_experiment(path)          # checks builders' kwargs; loads no data
    assert plan.experiment.name == path.stem
    assert list(plan.presets) == [s if isinstance(s, str) else s["name"]
                                  for s in plan.experiment.strategies]


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_shipped_preset_validates(path):
    load_preset(path)            # builds its plugins once with the given kwargs


def test_every_base_the_schema_accepts_has_a_template():
    assert {base.value for base in Base} == set(BASES)


@pytest.fixture
def write(tmp_path):
    (tmp_path / "strategies").symlink_to(REPO / "strategies")
    (tmp_path / "experiments").mkdir()

    def write(cfg=None, name="exp", folder="experiments", **changes):
        data = yaml.safe_load(yaml.safe_dump(cfg or GOOD))
        for dotted, value in changes.items():
            *parents, key = dotted.split("__")
            node = data
            for p in parents:
                node = node.setdefault(p, {})
            node[key] = value
        path = tmp_path / folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def _error(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_experiment(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_config_and_overrides(write):
    plan = load_experiment(write(), ["training.epochs=2", "seeds=[3,4]",
                                     "strategies=[naive,ewc]", "training.optimizer=adam"])
    assert plan.experiment.training.epochs == 2
    assert list(plan.experiment.seeds) == [3, 4]
    assert plan.experiment.training.optimizer.value == "adam"
    assert plan.training("ewc").lr == 0.01 and set(plan.presets) == {"naive", "ewc"}


def test_unknown_key(write):
    path = write(training__epochz=3)
    message = _error(path)
    assert message.startswith(f"{path}: training.epochz:") and "epochz" in message


def test_unreadable_files_are_one_line(write, tmp_path):
    path = tmp_path / "experiments" / "bad.yaml"
    path.write_text("name: t\ntraining: {lr: [1\n")
    assert _error(path).startswith(f"{path}: not valid YAML (while parsing a flow sequence")
    path.write_text("- name: t\n")
    assert _error(path) == f"{path}: Cannot merge DictConfig with ListConfig"
    assert _error(path.with_name("none.yaml")) == f"{path.with_name('none.yaml')}: file not found"


def test_unknown_top_level_key(write):
    path = write(sedds=[0])
    assert _error(path).startswith(f"{path}: sedds:")


@pytest.mark.parametrize("key, value, reason", [
    ("training__optimizer", "rmsprop", "sgd"),          # bad enum lists the choices
    ("training__device", "tpu", "cuda"),
    ("logging__wandb__mode", "sometimes", "offline"),
    ("training__epochs", "two", "two"),                 # bad type
    ("training__lr", -1.0, "must be > 0"),              # range
    ("training__momentum", 1.5, "[0, 1)"),
])
def test_bad_values(write, key, value, reason):
    path = write(**{key: value})
    message = _error(path)
    assert message.startswith(f"{path}: {key.replace('__', '.')}:") and reason in message


def test_bad_override_names_the_command_line(write):
    message = _error(write(), ["training.epochs=many"])
    assert message.startswith("command line: training.epochs:")
    assert _error(write(), ["training.nope=1"]).startswith("command line: training.nope:")
    assert "key=value" in _error(write(), ["training.epochs"])


def test_unknown_builder_kwargs(write):
    path = write(benchmark__n_exp=3)
    message = _error(path)
    assert message.startswith(f"{path}: benchmark.n_exp: unknown keyword of synthetic")
    path = write(model__hidden_sizes=[4])
    assert _error(path).startswith(f"{path}: model.hidden_sizes: unknown keyword of MLP")
    assert "unknown model 'mlpp'" in _error(write(model__name="mlpp"))
    assert "unknown benchmark 'permuted'" in _error(write(benchmark__name="permuted"))


def test_bad_model_values_fail_before_any_job(write):
    # the model's own checks run at planning time (built on the meta device), not in each job
    assert _error(write(), ["model.hidden=[a]"]) == (
        f"{write()}: model: hidden entries must be a positive integer, not 'a'")
    assert _error(write(model__dropout=1.5)).endswith("model: dropout must be in [0, 1), not 1.5")


def test_unknown_preset(write):
    path = write(strategies=["naive", "sparsegrowth"])
    message = _error(path)
    assert message.startswith(f"{path}: strategies[1]: unknown preset 'sparsegrowth'")
    assert "sparsegrow," in message


def test_plugin_errors_name_the_preset_file(write, tmp_path):
    strategies = tmp_path / "own" / "strategies"
    strategies.mkdir(parents=True)
    (tmp_path / "own" / "experiments").mkdir()
    exp = write(folder="own/experiments", strategies=["p"])

    def preset(text):
        (strategies / "p.yaml").write_text(text)
        return _error(exp)

    p = strategies / "p.yaml"
    message = preset("base: naive\nplugins:\n  - name: ewc\n    ewc_lambda: 1\n    lamda: 2\n")
    assert message.startswith(f"{p}: plugins[0].lamda: unknown keyword of EWCPlugin")
    message = preset("base: naive\nplugins:\n  - name: ewc\n")
    assert message.startswith(f"{p}: plugins[0].ewc_lambda: required")
    message = preset("base: naive\nplugins:\n  - name: sparsegrow\n"
                     "    protection: {gating: sometimes}\n")
    assert message.startswith(f"{p}: plugins[0] (sparsegrow):") and "gating" in message
    message = preset("base: naive\nplugins:\n  - name: ewk\n")
    assert message.startswith(f"{p}: plugins[0].name: unknown plugin 'ewk'")
    message = preset("base: replay\n")
    assert message.startswith(f"{p}: base:") and "naive, joint, cumulative" in message
    assert preset("base: naive\ntraining:\n  lr: 0\n").startswith(f"{p}: training.lr:")
    assert preset("base: naive\nextra: 1\n").startswith(f"{p}: extra:")


def test_strategy_and_seed_spellings(write):
    plan = load_experiment(write(), ["strategy=naive,ewc", "seed=1"])
    assert list(plan.presets) == ["naive", "ewc"] and list(plan.experiment.seeds) == [1]


def test_plugin_hyperparameter_override_renames_the_strategy(write):
    plan = load_experiment(write(strategies=["naive", "replay_sparsegrow"]), [
        "strategy.plugins.sparsegrow.subspace_energy=0.95",
        "strategy.plugins.replay.mem_size=20"])
    label = "replay_sparsegrow,replay.mem_size=20,sparsegrow.subspace_energy=0.95"
    assert list(plan.presets) == ["naive", label]
    plugins = [dict(e) for e in plan.presets[label].plugins]
    # the preset's recipe (replay) expanded, the override on top
    assert plugins == [{"name": "replay", "mem_size": 20},
                       {"name": "sparsegrow", "subspace_energy": 0.95, "budget": None,
                        "growth": {"units": None, "free_new_units": False, "birth_gate": False},
                        "protection": {"growable_energy": None, "project_every": 10}}]
    assert plan.training(label).lr == 0.01
    # one key of a mapping value; the shipped preset itself is unchanged
    plan = load_experiment(write(strategies=["replay_sparsegrow"]),
                           ["strategy.plugins.sparsegrow.subspace_energy.head=0.5"])
    label = "replay_sparsegrow,sparsegrow.subspace_energy.head=0.5"
    assert dict(plan.presets[label].plugins[1].subspace_energy) == {"default": 0.3, "head": 0.5}
    shipped = load_preset(REPO / "strategies" / "replay_sparsegrow.yaml").plugins[1]
    assert dict(shipped.subspace_energy) == {"default": 0.3, "head": 0.0}
    # a mapping merges into the preset's, as Hydra's overrides do
    (preset,) = load_experiment(write(strategies=["replay_sparsegrow"]), [
        "strategy.plugins.sparsegrow.subspace_energy={default: 0.5}"]).presets.values()
    assert dict(preset.plugins[1].subspace_energy) == {"default": 0.5, "head": 0.0}
    assert _error(write(strategies=["replay_sparsegrow"]),
                  ["strategy.plugins.replay.mem_size.head=0.5"]) == (
        "command line: strategy.plugins.replay.mem_size.head: mem_size of preset "
        "replay_sparsegrow is not a mapping")


def test_an_option_of_a_group_is_overridden_alone(write):
    # a preset that sets no growth options gets the one given; a recipe's keep the others
    plan = load_experiment(write(strategies=["sparsegrow", "sparsegrow_progressive"]),
                           ["strategy.plugins.sparsegrow.growth.units=32"])
    default, progressive = (plan.presets[f"{p},sparsegrow.growth.units=32"].plugins[0]
                            for p in ("sparsegrow", "sparsegrow_progressive"))
    assert dict(default.growth) == {"units": 32}
    assert dict(progressive.growth) == {"birth_gate": True, "free_new_units": True,
                                        "grow_at": 0.0, "units": 32}
    assert _error(write(strategies=["sparsegrow"]),
                  ["strategy.plugins.sparsegrow.growth.unit=32"]).startswith(
        "command line: strategy.plugins.sparsegrow: growth: unknown option 'unit' (accepted: "
        "grow_at, units,")


@pytest.mark.parametrize("override, message", [
    ("strategy.plugins.sparsegrow.subspace_enrgy=0.9",
     "command line: strategy.plugins.sparsegrow.subspace_enrgy: unknown keyword of "
     "SparseGrowPlugin (accepted: layers, subspace_energy, budget, growth, protection, seed)"),
    ("strategy.plugins.sparsegrow.subspace_energy=1.5",
     "command line: strategy.plugins.sparsegrow: subspace energy must be a fraction in [0, 1]"),
    ("strategy.plugins.sparsegrow.protection.gating=sometimes",
     "command line: strategy.plugins.sparsegrow: gating must be one of mask, subspace, both"),
    ("strategy.plugins.ewc.ewc_lambda=3",
     "command line: strategy.plugins.ewc: no strategy of this run uses plugin 'ewc' "
     "(strategies: naive, sparsegrow)"),
    ("strategy.plugins.sparsgrow.units=3",
     "command line: strategy.plugins.sparsgrow: unknown plugin 'sparsgrow'"),
    ("strategy.sparsegrow.units=3", "command line: strategy.sparsegrow.units: unknown key"),
])
def test_bad_plugin_override_is_one_line_naming_the_key(write, override, message):
    assert _error(write(strategies=["naive", "sparsegrow"]), [override]).startswith(message)


class Extended(plugins.SparseGrowPlugin):
    # importable (not local to the test): its config is built from the class's path
    def __init__(self, *, new_knob: int = 0, **kwargs):
        super().__init__()
        self.new_knob = new_knob


def test_plugin_keywords_come_from_the_signature(write, monkeypatch):
    # a keyword added to a plugin's constructor is accepted without touching the config code
    monkeypatch.setattr(plugins, "SparseGrowPlugin", Extended)
    plan = load_experiment(write(strategies=["sparsegrow"]),
                           ["strategy.plugins.sparsegrow.new_knob=3"])
    assert list(plan.presets) == ["sparsegrow,sparsegrow.new_knob=3"]
    assert plan.presets["sparsegrow,sparsegrow.new_knob=3"].plugins[0].new_knob == 3
    # and typed by its annotation
    assert _error(write(strategies=["sparsegrow"]),
                  ["strategy.plugins.sparsegrow.new_knob=many"]).startswith(
        "command line: strategy.plugins.sparsegrow.new_knob: Value 'many' of type 'str' could "
        "not be converted to Integer")


def test_named_variants_of_a_preset_in_the_experiment_file(write):
    variants = [{"name": "ewc_10", "preset": "ewc", "plugins": {"ewc": {"ewc_lambda": 10.0}}},
                {"name": "same_as_ewc", "preset": "ewc"}]
    path = write(strategies=["naive", *variants])
    plan = load_experiment(path)
    assert list(plan.presets) == ["naive", "ewc_10", "same_as_ewc"]
    assert [dict(e) for e in plan.presets["ewc_10"].plugins] == [
        {"name": "ewc", "ewc_lambda": 10.0}]
    assert plan.presets["same_as_ewc"].plugins[0].ewc_lambda == 100.0
    # the command line picks a variant by its name, and may change it further
    plan = load_experiment(path, ["strategy=ewc_10", "strategy.plugins.ewc.ewc_lambda=5"])
    assert list(plan.presets) == ["ewc_10,ewc.ewc_lambda=5"]
    # Avalanche's own argument checks (asserts) become one line too
    assert _error(path, ["strategy.plugins.ewc.mode=online"]) == (
        "command line: strategy.plugins.ewc: You need to set `decay_factor` to use the `online` "
        "mode.")


@pytest.mark.parametrize("variant, message", [
    ({"name": "v", "preset": "ewk"}, "strategies[0].preset: unknown preset 'ewk'"),
    ({"name": "v", "preset": "ewc", "plugins": {"ewc": {"lamda": 1}}},
     "strategies[0].plugins.ewc.lamda: unknown keyword of EWCPlugin (accepted: ewc_lambda,"),
    ({"name": "v", "preset": "sparsegrow",
      "plugins": {"sparsegrow": {"protection": {"gating": "sometimes"}}}},
     "strategies[0].plugins.sparsegrow: gating must be one of mask, subspace, both"),
    ({"name": "v", "preset": "ewc", "plugins": {"si": {"si_lambda": 1}}},
     "strategies[0].plugins.si: preset ewc has no plugin 'si'"),
    ({"name": "v", "presets": "ewc"}, "strategies[0].presets: Key 'presets' not in "
                                      "'StrategyVariant' (a strategy is a preset's name or"),
    ({"preset": "ewc"}, "strategies[0].name: missing (a strategy is a preset's name or"),
    ({"name": "v", "preset": "ewc", "plugins": {"ewc": 3}},
     "strategies[0].plugins.ewc: Value 3 (int) is incompatible with type"),
])
def test_bad_variant_is_one_line_naming_the_key(write, variant, message):
    path = write(strategies=[variant])
    assert _error(path).startswith(f"{path}: {message}")
