"""Load, override and validate experiment and preset YAMLs.

Hydra composes each file over its schema and applies the overrides (:mod:`.compose`); the
keyword sections (benchmark, model, each plugin) are checked against the signature of the
function they are passed to (:mod:`.signature`), and every plugin is built once so that its
own checks of values run, without loading any data. What remains here is what no library
knows: the command line's spellings, the named variants of an experiment file, the range
rules of the training settings and the run names.

Every problem becomes one :class:`ConfigError` line ``<file>: <key>: <reason>``.

Command-line overrides are ``key=value`` on the experiment (Hydra's grammar), plus three
spellings: ``strategy=<preset>[,<preset>...]`` (the experiment's ``strategies``),
``seed=<k>[,<k>...]`` (its ``seeds``) and ``strategy.plugins.<plugin>.<keyword>=<value>``, a
hyperparameter of every strategy of the run that uses ``<plugin>``; such a strategy runs under
the name ``<preset>,<plugin>.<keyword>=<value>`` so its results never mix with the preset's own.

Presets are looked up by :func:`find_preset`: a user's ``strategies/`` folder first (it adds
presets and replaces built-in ones of the same name), then the built-in presets shipped in the
package (:data:`BUILTIN_PRESETS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sparsegrow.config.compose import (EXPERIMENT_SCHEMA, PRESET_SCHEMA, UnknownConfig, compose,
                                       parse_override)
from sparsegrow.config.registry import check_base_args, plugin_class
from sparsegrow.config.schema import TRAINING_RANGES, StrategyVariant, TrainingConfig
from sparsegrow.config.signature import check_keyword, check_kwargs
from sparsegrow.errors import ConfigError


@dataclass
class Plan:
    """A validated experiment: its config and the preset of every strategy it runs, in order,
    under the strategy's run name (the preset's, with the command line's plugin overrides)."""

    path: Path
    experiment: DictConfig
    presets: dict[str, DictConfig]
    preset_paths: dict[str, Path]

    def training(self, strategy: str) -> DictConfig:
        """The experiment's training section with the preset's overrides applied."""
        return _merge_training(self.experiment.training, self.presets[strategy].training,
                               self.preset_paths[strategy])


def override_text(value) -> str:
    """A parsed value as override text in Hydra's grammar, which parses it back to it."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix(
        "\n...\n").strip()


def named_section(cfg: DictConfig, key: str, source) -> tuple[str, dict]:
    """Split a ``{name: ..., **kwargs}`` section into its name and keyword arguments."""
    section = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    if not isinstance(section, dict) or not isinstance(section.get("name"), str):
        raise ConfigError(f"{source}: {key}.name: missing (a mapping with a 'name' is needed)")
    kwargs = dict(section)
    return kwargs.pop("name"), kwargs


def _check_training(training: DictConfig, source) -> None:
    for key, ok, reason in TRAINING_RANGES:
        value = training[key]
        if not ok(value):
            raise ConfigError(f"{source}: training.{key}: {reason}, got {value!r}")


def _merge_training(base: DictConfig, overrides, source) -> DictConfig:
    if not overrides:
        return base
    try:
        merged = OmegaConf.merge(base, overrides)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{source}: training.{err.full_key}: "
                          f"{str(err).splitlines()[0]}") from None
    _check_training(merged, source)
    return merged


# the presets shipped in the package, so that an installed wheel has them
BUILTIN_PRESETS = Path(__file__).resolve().parent.parent / "presets"


def user_strategies_dir(experiment_path: Path) -> Path | None:
    """The user's ``strategies/`` folder: next to the experiment file, next to the experiment's
    folder (a project laid out as ``experiments/`` + ``strategies/``), or in the working
    directory, whichever comes first; None when there is none."""
    folder = experiment_path.resolve().parent
    for candidate in (folder / "strategies", folder.parent / "strategies",
                      Path.cwd() / "strategies"):
        if candidate.is_dir():
            return candidate
    return None


def find_preset(name: str, experiment_path: Path, *, source, key: str) -> Path:
    """The file of preset ``name`` for the experiment at ``experiment_path``: the user's
    ``strategies/`` folder first, so that its presets add to the built-in ones and replace
    those of the same name, then :data:`BUILTIN_PRESETS`. An unknown name is an error at
    ``key`` of ``source`` that lists the known ones."""
    user = user_strategies_dir(experiment_path)
    folders = [f for f in (user, BUILTIN_PRESETS) if f is not None]
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
    where = f"{user} nor the built-in presets" if user else "the built-in presets"
    raise ConfigError(f"{source}: {key}: unknown preset '{name}' (not in {where}; known: "
                      f"{', '.join(known)})")


def _compose_preset(file: Path, overrides=(), *, overrides_source: str = "command line"
                    ) -> DictConfig:
    """The preset in ``file``: the option of the config group that is its folder, with its
    recipes expanded (:func:`_expand_recipes`)."""
    try:
        preset = compose(file.parent.parent, {f"{file.parent.name}@_global_": file.stem},
                         PRESET_SCHEMA, overrides, source=file, overrides_source=overrides_source)
    except UnknownConfig:
        raise ConfigError(f"{file}: file not found") from None
    return _expand_recipes(preset, file)


def _expand_recipes(preset: DictConfig, source) -> DictConfig:
    """``preset`` with each plugin section that names a recipe (``recipe: <name>``, the
    sparsegrow plugin's) replaced by the recipe's keywords (:func:`sparsegrow.recipes.kwargs`),
    which the section's other keywords override (a mapping merges into the recipe's). Expanded
    here, so that a run's recorded config holds the keywords it ran with."""
    from sparsegrow import recipes

    for i, entry in enumerate(preset.plugins):
        if "recipe" not in entry:
            continue
        name, kwargs = named_section(entry, f"plugins[{i}]", source)
        recipe = kwargs.pop("recipe")
        if name != "sparsegrow":
            raise ConfigError(f"{source}: plugins[{i}].recipe: only the sparsegrow plugin has "
                              f"recipes, not {name!r}")
        try:
            preset.plugins[i] = {"name": name, **recipes.kwargs(recipe, **kwargs)}
        except ConfigError as err:
            raise ConfigError(f"{source}: plugins[{i}].recipe: {err}") from None
    return preset


def _check_plugin(cls: type, kwargs: dict, source, key: str, where: str) -> None:
    """Check ``kwargs`` (at ``key``) against ``cls``'s signature, then build it once to check
    the values (errors at ``where``)."""
    check_kwargs(cls, kwargs, source, key)
    try:
        cls(**kwargs)
    except (ConfigError, TypeError, ValueError, AssertionError) as err:
        # Avalanche's plugins check their arguments with assert
        raise ConfigError(f"{source}: {where}: {err}") from None


def _check_model_values(cls: type, kwargs: dict, source) -> None:
    """Build the model once, on the meta device (no memory, no data), so that its own value
    checks (e.g. positive widths) fail the whole sweep before any job starts. MNIST's sample
    shape stands in for the benchmark's: no model option depends on it."""
    try:
        with torch.device("meta"):
            cls(input_shape=(1, 28, 28), n_classes=10, **kwargs)
    except (ConfigError, TypeError, ValueError) as err:
        raise ConfigError(f"{source}: model: {err}") from None


def _plugin_class(name: str, source, key: str) -> type:
    try:
        return plugin_class(name)
    except ConfigError as err:
        raise ConfigError(f"{source}: {key}: {err}") from None


def _check_preset(preset: DictConfig, path: Path) -> DictConfig:
    """Every plugin of ``preset`` built once with its keywords; its training overrides."""
    for i, entry in enumerate(preset.plugins):
        name, kwargs = named_section(entry, f"plugins[{i}]", path)
        _check_plugin(_plugin_class(name, path, f"plugins[{i}].name"), kwargs, path,
                      f"plugins[{i}]", f"plugins[{i}] ({name})")
    check_base_args(preset.base.value, preset.base_args, path)
    if preset.training is not None:
        _merge_training(OmegaConf.structured(TrainingConfig), preset.training, path)
    return preset


def load_preset(path: Path) -> DictConfig:
    """Load and validate one strategy preset (its plugins are built once to check values)."""
    path = Path(path)
    return _check_preset(_compose_preset(path), path)


def _split_overrides(overrides: Iterable[str]) -> tuple[list[str], dict[str, dict]]:
    """The experiment's overrides (``strategy=``/``seed=`` as its lists) and the plugin
    hyperparameters ``{plugin: {keyword[.key...]: value text}}`` of ``strategy.plugins.*``
    overrides (a dotted keyword sets one key of a mapping value, e.g. a layer's energy)."""
    experiment, plugins = [], {}
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"command line: {override}: overrides are key=value")
        key, value = override.split("=", 1)
        if key in ("strategy", "seed"):
            experiment.append(f"{key.replace('y', 'ie')}s=[{value}]")
        elif key.startswith("strategy."):
            parts = key.split(".")
            if len(parts) < 4 or parts[1] != "plugins" or not all(parts):
                raise ConfigError(f"command line: {key}: unknown key (a strategy's plugin "
                                  f"hyperparameter is strategy.plugins.<plugin>.<keyword>)")
            parse_override(override, f"command line: {key}")   # the value's grammar
            plugins.setdefault(parts[2], {})[".".join(parts[3:])] = value
        else:
            experiment.append(override)
    return experiment, plugins


def _check_plugin_keys(plugins: dict[str, dict], source, prefix: str) -> None:
    """Every plugin of ``{plugin: {keyword[.key...]: value}}`` exists and takes the keyword."""
    for plugin, values in plugins.items():
        key = f"{prefix}.{plugin}"
        cls = _plugin_class(plugin, source, key)
        for path in values:
            check_keyword(cls, path.split(".")[0], source, key)


def _set_plugins(preset: DictConfig, plugins: dict[str, dict], file: Path, source, prefix: str
                 ) -> tuple[DictConfig, str]:
    """The preset of ``file`` composed again with the plugin hyperparameters ``{plugin: {keyword:
    value text}}`` of the plugins it has (a dotted keyword sets one key of a mapping value); and
    ``,<plugin>.<keyword>=<value>`` for each. Every plugin changed is built once to check its
    values."""
    overrides, applied, changed = [], "", []
    for i, entry in enumerate(preset.plugins):
        for path, value in plugins.get(entry.name, {}).items():
            *parents, _ = path.split(".")
            node = entry
            for part in parents:
                # a keyword the preset leaves at its default is created (growth.units=32 on
                # a preset without growth options)
                node = node.get(part, {})
                if not isinstance(node, (DictConfig, dict)):
                    raise ConfigError(f"{source}: {prefix}.{entry.name}.{path}: {part} of "
                                      f"preset {file.stem} is not a mapping")
            overrides.append(f"++plugins.{i}.{path}={value}")
            applied += f",{entry.name}.{path}={value}".replace("/", "_")
            changed.append(i)
    if not overrides:
        return preset, ""
    preset = _compose_preset(file, overrides, overrides_source=str(source))
    for i in dict.fromkeys(changed):
        plugin, kwargs = named_section(preset.plugins[i], "plugin", source)
        key = f"{prefix}.{plugin}"
        _check_plugin(plugin_class(plugin), kwargs, source, key, key)
    return preset, applied


def _override_plugins(presets: dict[str, tuple[DictConfig, Path]], plugins: dict[str, dict]
                      ) -> dict[str, tuple[DictConfig, Path]]:
    """``presets`` with the command line's plugin hyperparameters set, renamed after them where
    they apply."""
    _check_plugin_keys(plugins, "command line", "strategy.plugins")
    for plugin in plugins:
        if not any(e.name == plugin for p, _ in presets.values() for e in p.plugins):
            raise ConfigError(f"command line: strategy.plugins.{plugin}: no strategy of this "
                              f"run uses plugin '{plugin}' (strategies: {', '.join(presets)})")
    out = {}
    for strategy, (preset, path) in presets.items():
        preset, applied = _set_plugins(preset, plugins, path, "command line", "strategy.plugins")
        out[strategy + applied] = (preset, path)
    return out


VARIANT_FORM = ("{name, preset, plugins: {plugin: {keyword: value}}, add_plugins: [{name, "
                "plugin keywords}]}")


def _variant(entry, path: Path, index: int) -> tuple[str, DictConfig, Path]:
    """A strategy of the experiment file: a preset's name, or a :class:`StrategyVariant`."""
    key = f"strategies[{index}]"
    if isinstance(entry, str):
        file = find_preset(entry, path, source=path, key=key)
        return entry, _check_preset(_compose_preset(file), file), file
    try:
        variant = OmegaConf.merge(OmegaConf.structured(StrategyVariant), entry)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {key}.{err.full_key}: {str(err).splitlines()[0]} (a "
                          f"strategy is a preset's name or {VARIANT_FORM})") from None
    missing = sorted(OmegaConf.missing_keys(variant))
    if missing:
        raise ConfigError(f"{path}: {key}.{missing[0]}: missing (a strategy is a preset's name or "
                          f"{VARIANT_FORM})")
    file = find_preset(variant.preset, path, source=path, key=f"{key}.preset")
    preset = _check_preset(_compose_preset(file), file)
    plugins = {p: {k: override_text(v) for k, v in kw.items()}
               for p, kw in OmegaConf.to_container(variant.plugins).items()}
    _check_plugin_keys(plugins, path, f"{key}.plugins")
    for plugin in plugins:
        if not any(e.name == plugin for e in preset.plugins):
            raise ConfigError(f"{path}: {key}.plugins.{plugin}: preset {variant.preset} has "
                              f"no plugin '{plugin}'")
    preset, _ = _set_plugins(preset, plugins, file, path, f"{key}.plugins")
    for i, entry in enumerate(variant.add_plugins):
        where = f"{key}.add_plugins[{i}]"
        name, kwargs = named_section(entry, where, path)
        _check_plugin(_plugin_class(name, path, f"{where}.name"), kwargs, path, where,
                      f"{where} ({name})")
        preset.plugins.append(entry)
    return variant.name, preset, file


def _compose_experiment(path: Path, overrides=()) -> DictConfig:
    try:
        return compose(path.parent, path.stem, EXPERIMENT_SCHEMA, overrides, source=path)
    except UnknownConfig:
        raise ConfigError(f"{path}: file not found") from None


def read_sweep(path) -> dict[str, str]:
    """The experiment file's ``sweep`` section as ``{key: Hydra sweep text}`` (a YAML list is
    its values)."""
    sweep = OmegaConf.to_container(_compose_experiment(Path(path)).sweep)
    return {k: ",".join(override_text(x) for x in v) if isinstance(v, list) else override_text(v)
            for k, v in sweep.items()}


def load_experiment(path, overrides: Iterable[str] = (), run_name_overrides: Iterable[str] = ()
                    ) -> Plan:
    """Load ``path``, apply ``key=value`` overrides, validate everything it refers to.

    ``run_name_overrides`` (some of ``overrides``) are appended to every strategy's run name:
    the keys a sweep varies, so that its points write different folders."""
    from sparsegrow.benchmarks import benchmark_builder
    from sparsegrow.models import model_class

    path = Path(path)
    overrides, plugin_overrides = _split_overrides(overrides)
    file_cfg = _compose_experiment(path)
    _check_training(file_cfg.training, path)
    cfg = file_cfg
    if overrides:
        cfg = _compose_experiment(path, overrides)
        _check_training(cfg.training, "command line")
    if OmegaConf.is_missing(cfg, "name") or not cfg.name:
        raise ConfigError(f"{path}: name: missing")
    if not cfg.strategies:
        raise ConfigError(f"{path}: strategies: empty (name presets, built-in or in strategies/)")
    if not cfg.seeds:
        raise ConfigError(f"{path}: seeds: empty")

    name, kwargs = named_section(cfg.benchmark, "benchmark", path)
    try:
        builder = benchmark_builder(name)
    except ConfigError as err:
        raise ConfigError(f"{path}: benchmark.name: {err}") from None
    if not name.startswith("classic:"):       # Avalanche's generators take **kwargs
        check_kwargs(builder, kwargs, path, "benchmark")
    name, kwargs = named_section(cfg.model, "model", path)
    try:
        cls = model_class(name)
    except ConfigError as err:
        raise ConfigError(f"{path}: model.name: {err}") from None
    check_kwargs(cls, kwargs, path, "model", exclude=("input_shape", "n_classes"))
    _check_model_values(cls, kwargs, path)

    # a name the command line picks is one of the file's own variants, else a preset
    variants = {e.name: e for e in file_cfg.strategies if isinstance(e, DictConfig)
                and "name" in e}
    presets = {}
    for i, strategy in enumerate(cfg.strategies):
        entry = variants.get(strategy, strategy) if isinstance(strategy, str) else strategy
        name, preset, preset_path = _variant(entry, path, i)
        presets[name] = (preset, preset_path)
    labelled = _override_plugins(presets, plugin_overrides)
    suffix = "".join(f",{o}".replace("/", "_") for o in run_name_overrides
                     if not o.startswith("strategy."))      # those are in the name already
    plan = Plan(path=path, experiment=cfg,
                presets={label + suffix: p for label, (p, _) in labelled.items()},
                preset_paths={label + suffix: f for label, (_, f) in labelled.items()})
    for strategy in plan.presets:
        plan.training(strategy)
    return plan
