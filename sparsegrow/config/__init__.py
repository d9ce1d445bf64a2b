"""Experiment and strategy-preset YAMLs: schemas in Hydra's ConfigStore, composition with
overrides, validation."""

from sparsegrow.config.loading import Plan, load_experiment, load_preset
from sparsegrow.config.registry import PLUGINS, plugin_class
from sparsegrow.config.schema import ExperimentConfig, PresetConfig, TrainingConfig
from sparsegrow.config.signature import check_kwargs

__all__ = ["ExperimentConfig", "PLUGINS", "Plan", "PresetConfig", "TrainingConfig",
           "check_kwargs", "load_experiment", "load_preset", "plugin_class"]
