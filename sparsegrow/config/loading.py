"""Load, override and validate experiment and preset YAMLs.

Every problem becomes one :class:`ConfigError` line ``<file>: <key>: <reason>``. Free-form
sections (benchmark, model, plugins) are checked against the signature of the function they
are passed to, without building anything that loads data.

Command-line overrides are ``key=value`` on the experiment, plus three spellings:
``strategy=<preset>[,<preset>...]`` (the experiment's ``strategies``), ``seed=<k>[,<k>...]``
(its ``seeds``) and ``strategy.plugins.<plugin>.<keyword>=<value>``, a hyperparameter of every
strategy of the run that uses ``<plugin>``; such a strategy runs under the name
``<preset>,<plugin>.<keyword>=<value>`` so its results never mix with the preset's own.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sparsegrow.config.registry import plugin_class
from sparsegrow.config.schema import TRAINING_RANGES, ExperimentConfig, PresetConfig, TrainingConfig
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


def _omegaconf_error(source, err: OmegaConfBaseException, prefix: str = "") -> ConfigError:
    key = getattr(err, "full_key", None) or ""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ConfigError(f"{source}: {prefix}{key}: {reason}")


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def _structured(schema, data: dict, source, prefix: str = "") -> DictConfig:
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), data)
    except OmegaConfBaseException as err:
        raise _omegaconf_error(source, err, prefix) from None


def check_kwargs(func: Callable, kwargs: dict, source, key: str, *, skip=(),
                 complete: bool = True) -> None:
    """Fail on a keyword ``func`` does not accept, or (``complete``: ``kwargs`` are all it will
    get) a required one that is missing."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items()
                if n not in skip and n != "self" and p.kind is not p.VAR_POSITIONAL]
    for name in kwargs:
        if name not in accepted:
            raise ConfigError(f"{source}: {key}.{name}: unknown keyword of "
                              f"{getattr(func, '__qualname__', func)} "
                              f"(accepted: {', '.join(accepted)})")
    for name in accepted if complete else ():
        if params[name].default is inspect.Parameter.empty and name not in kwargs:
            raise ConfigError(f"{source}: {key}.{name}: required by "
                              f"{getattr(func, '__qualname__', func)} but missing")


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
    merged = _structured(TrainingConfig, OmegaConf.to_container(base), source)
    try:
        merged = OmegaConf.merge(merged, overrides)
    except OmegaConfBaseException as err:
        raise _omegaconf_error(source, err, "training.") from None
    _check_training(merged, source)
    return merged


def strategies_dir(experiment_path: Path) -> Path:
    """``strategies/`` next to the experiment's folder, else in the working directory."""
    for candidate in (experiment_path.resolve().parent.parent / "strategies",
                      Path.cwd() / "strategies"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"{experiment_path}: no strategies/ folder next to "
                      f"{experiment_path.resolve().parent} nor in {Path.cwd()}")


def _check_plugin(cls: type, kwargs: dict, source, key: str, where: str) -> None:
    """Check ``kwargs`` (at ``key``) against ``cls``'s signature, then build it once to check
    the values (errors at ``where``)."""
    check_kwargs(cls.__init__, kwargs, source, key)
    try:
        cls(**kwargs)
    except (ConfigError, TypeError, ValueError, AssertionError) as err:
        # Avalanche's plugins check their arguments with assert
        raise ConfigError(f"{source}: {where}: {err}") from None


def load_preset(path: Path) -> DictConfig:
    """Load and validate one strategy preset (its plugins are built once to check values)."""
    preset = _structured(PresetConfig, _read(path), path)
    for i, entry in enumerate(preset.plugins):
        name, kwargs = named_section(entry, f"plugins[{i}]", path)
        _check_plugin(plugin_class_or_error(name, path, i), kwargs, path, f"plugins[{i}]",
                      f"plugins[{i}] ({name})")
    if preset.training is not None:
        _merge_training(OmegaConf.structured(TrainingConfig), preset.training, path)
    return preset


def _split_overrides(overrides: Iterable[str]) -> tuple[list[str], dict[str, dict]]:
    """The experiment's dotlist (``strategy=``/``seed=`` as its lists) and the plugin
    hyperparameters ``{plugin: {keyword[.key...]: value}}`` of ``strategy.plugins.*``
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
            try:
                parsed = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={value}"]))["v"]
            except OmegaConfBaseException as err:
                raise _omegaconf_error("command line", err, f"{key}=") from None
            plugins.setdefault(parts[2], {})[".".join(parts[3:])] = parsed
        else:
            experiment.append(override)
    return experiment, plugins


def _check_plugin_keys(plugins: dict[str, dict], source, prefix: str) -> None:
    """Every plugin of ``{plugin: {keyword[.key...]: value}}`` exists and takes the keyword
    (read from its constructor's signature)."""
    for plugin, values in plugins.items():
        key = f"{prefix}.{plugin}"
        try:
            cls = plugin_class(plugin)
        except ConfigError as err:
            raise ConfigError(f"{source}: {key}: {err}") from None
        for path in values:
            check_kwargs(cls.__init__, {path.split(".")[0]: None}, source, key, complete=False)


def _set_plugins(preset: DictConfig, plugins: dict[str, dict], source, prefix: str,
                 strategy: str) -> tuple[DictConfig, str]:
    """A copy of ``preset`` with the plugin hyperparameters of the plugins it has set (a dotted
    keyword sets one key of a mapping value); and ``,<plugin>.<keyword>=<value>`` for each.
    Every plugin changed is built once to check its values."""
    preset, applied = copy.deepcopy(preset), ""
    for i, entry in enumerate(preset.plugins):
        if entry.name not in plugins:
            continue
        _, kwargs = named_section(entry, entry.name, source)
        key = f"{prefix}.{entry.name}"
        for path, value in plugins[entry.name].items():
            *parents, last = path.split(".")
            node = kwargs
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"{source}: {key}.{path}: {part} of preset {strategy} is "
                                      f"not a mapping")
                node = node[part]
            node[last] = value
            applied += f",{entry.name}.{path}={value}".replace("/", "_")
        _check_plugin(plugin_class(entry.name), kwargs, source, key, key)
        preset.plugins[i] = {"name": entry.name, **kwargs}
    return preset, applied


def _override_plugins(presets: dict[str, DictConfig], plugins: dict[str, dict]) -> dict:
    """``presets`` with the command line's plugin hyperparameters set, renamed after them where
    they apply."""
    _check_plugin_keys(plugins, "command line", "strategy.plugins")
    for plugin in plugins:
        if not any(e.name == plugin for p in presets.values() for e in p.plugins):
            raise ConfigError(f"command line: strategy.plugins.{plugin}: no strategy of this "
                              f"run uses plugin '{plugin}' (strategies: {', '.join(presets)})")
    out = {}
    for strategy, preset in presets.items():
        preset, applied = _set_plugins(preset, plugins, "command line", "strategy.plugins",
                                       strategy)
        out[strategy + applied] = preset
    return out


def _variant(entry, path: Path, index: int, folder: Path) -> tuple[str, DictConfig, Path]:
    """A strategy of the experiment file: a preset's name, or a named variant of a preset,
    ``{name: <run name>, preset: <preset>, plugins: {<plugin>: {<keyword>: <value>}}}``."""
    key = f"strategies[{index}]"
    if isinstance(entry, str):
        preset_path = _preset_path(entry, folder, path, key)
        return entry, load_preset(preset_path), preset_path
    entry = OmegaConf.to_container(entry) if OmegaConf.is_config(entry) else entry
    unknown = set(entry) - {"name", "preset", "plugins"}
    if unknown or not isinstance(entry.get("name"), str) or not isinstance(entry.get("preset"), str):
        what = f"unknown key {sorted(unknown)[0]}" if unknown else "name and preset missing"
        raise ConfigError(f"{path}: {key}: {what} (a strategy is a preset's name or "
                          f"{{name, preset, plugins: {{plugin: {{keyword: value}}}}}})")
    plugins = entry.get("plugins") or {}
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ConfigError(f"{path}: {key}.plugins: expected {{plugin: {{keyword: value}}}}")
    preset_path = _preset_path(entry["preset"], folder, path, f"{key}.preset")
    preset = load_preset(preset_path)
    _check_plugin_keys(plugins, path, f"{key}.plugins")
    for plugin in plugins:
        if not any(e.name == plugin for e in preset.plugins):
            raise ConfigError(f"{path}: {key}.plugins.{plugin}: preset {entry['preset']} has no "
                              f"plugin '{plugin}'")
    preset, _ = _set_plugins(preset, plugins, path, f"{key}.plugins", entry["preset"])
    return entry["name"], preset, preset_path


def _preset_path(name: str, folder: Path, path: Path, key: str) -> Path:
    preset_path = folder / f"{name}.yaml"
    if not preset_path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ConfigError(f"{path}: {key}: unknown preset '{name}' "
                          f"(no {preset_path}; known: {known})")
    return preset_path


def plugin_class_or_error(name: str, source, index: int) -> type:
    try:
        return plugin_class(name)
    except ConfigError as err:
        raise ConfigError(f"{source}: plugins[{index}].name: {err}") from None


def read_sweep(path) -> dict[str, str]:
    """The experiment file's ``sweep`` section as ``{key: Hydra sweep text}`` (a YAML list is
    its values)."""
    sweep = _read(Path(path)).get("sweep") or {}
    if not isinstance(sweep, dict):
        raise ConfigError(f"{path}: sweep: expected a mapping of key: values")
    return {k: ",".join(str(x) for x in v) if isinstance(v, list) else str(v)
            for k, v in sweep.items()}


def load_experiment(path, overrides: Iterable[str] = (), run_name_overrides: Iterable[str] = ()
                    ) -> Plan:
    """Load ``path``, apply ``key=value`` overrides, validate everything it refers to.

    ``run_name_overrides`` (some of ``overrides``) are appended to every strategy's run name:
    the keys a sweep varies, so that its points write different folders."""
    from sparsegrow.benchmarks import benchmark_builder
    from sparsegrow.models import model_class

    path = Path(path)
    cfg = _structured(ExperimentConfig, _read(path), path)
    overrides, plugin_overrides = _split_overrides(overrides)
    _check_training(cfg.training, path)
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
        except OmegaConfBaseException as err:
            raise _omegaconf_error("command line", err) from None
        _check_training(cfg.training, "command line")
    if cfg.name == "???" or not cfg.name:
        raise ConfigError(f"{path}: name: missing")
    if not cfg.strategies:
        raise ConfigError(f"{path}: strategies: empty (name presets in strategies/)")
    if not cfg.seeds:
        raise ConfigError(f"{path}: seeds: empty")

    name, kwargs = named_section(cfg.benchmark, "benchmark", path)
    try:
        builder = benchmark_builder(name)
    except ConfigError as err:
        raise ConfigError(f"{path}: benchmark.name: {err}") from None
    if not name.startswith("classic:"):
        check_kwargs(builder, kwargs, path, "benchmark")
    name, kwargs = named_section(cfg.model, "model", path)
    try:
        cls = model_class(name)
    except ConfigError as err:
        raise ConfigError(f"{path}: model.name: {err}") from None
    check_kwargs(cls.__init__, kwargs, path, "model", skip=("input_shape", "n_classes"))

    folder = strategies_dir(path)
    # a name the command line picks is one of the file's own variants, else a preset
    variants = {e["name"]: e for e in _read(path).get("strategies") or []
                if isinstance(e, dict) and "name" in e}
    presets, preset_paths = {}, {}
    for i, strategy in enumerate(cfg.strategies):
        entry = variants.get(strategy, strategy) if isinstance(strategy, str) else strategy
        name, preset, preset_path = _variant(entry, path, i, folder)
        presets[name], preset_paths[name] = preset, preset_path
    labelled = _override_plugins(presets, plugin_overrides)
    suffix = "".join(f",{o}".replace("/", "_") for o in run_name_overrides
                     if not o.startswith("strategy."))      # those are in the name already
    labelled = {label + suffix: preset for label, preset in labelled.items()}
    preset_paths = dict(zip(labelled, preset_paths.values()))
    presets = labelled
    plan = Plan(path=path, experiment=cfg, presets=presets, preset_paths=preset_paths)
    for strategy in presets:
        plan.training(strategy)
    return plan
