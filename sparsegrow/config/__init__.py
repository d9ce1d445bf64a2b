"""Experiment and strategy-preset YAMLs: typed schemas, loading, overrides, validation."""

from sparsegrow.config.loading import Plan, check_kwargs, load_experiment, load_preset
from sparsegrow.config.registry import PLUGINS, plugin_class
from sparsegrow.config.schema import ExperimentConfig, PresetConfig, TrainingConfig

__all__ = ["ExperimentConfig", "PLUGINS", "Plan", "PresetConfig", "TrainingConfig",
           "check_kwargs", "load_experiment", "load_preset", "plugin_class"]
