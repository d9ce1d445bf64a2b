"""Typed schemas of experiment and strategy-preset YAMLs (OmegaConf structured configs).

Registered in Hydra's ConfigStore (:mod:`.compose`), which composes every file over them.
Sections whose keys belong to someone else's function (``benchmark``, ``model``, each plugin)
are free-form here and checked against that function's signature (:mod:`.signature`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


class Optimizer(Enum):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"


class Device(Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class WandbMode(Enum):
    auto = "auto"          # online when an API key is configured, else offline
    offline = "offline"
    online = "online"
    disabled = "disabled"


class Base(Enum):
    naive = "naive"        # Avalanche's Naive template; the plugins add the method
    joint = "joint"        # JointTraining on the whole stream: the upper bound
    cumulative = "cumulative"  # Cumulative: retrains on every experience so far at each step
    der = "der"            # Dark Experience Replay++ (Avalanche's DER template)
    er_ace = "er_ace"      # Experience Replay with asymmetric cross-entropy (ER_ACE template)
    er_aml = "er_aml"      # Experience Replay with asymmetric metric learning (ER_AML template)
    generative_replay = "generative_replay"   # Deep Generative Replay (its VAE: MNIST shapes)


@dataclass
class TrainingConfig:
    optimizer: Optimizer = Optimizer.sgd
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 128
    eval_batch_size: int = 512
    device: Device = Device.auto
    # mixed precision of each training step (sparsegrow.runner.amp): off, bf16 or fp16 (with a
    # GradScaler); not an Enum because YAML reads a bare `off` as false, which also means off
    amp: Any = "off"


@dataclass
class WandbConfig:
    project: str = "sparsegrow"
    mode: WandbMode = WandbMode.auto


@dataclass
class LoggingConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    output_dir: str = "results"


@dataclass
class ExperimentConfig:
    name: str = MISSING
    benchmark: Dict[str, Any] = field(default_factory=dict)   # {name, builder kwargs}
    model: Dict[str, Any] = field(default_factory=dict)       # {name, model kwargs}
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # preset names in strategies/, or StrategyVariant mappings
    strategies: List[Any] = field(default_factory=list)
    seeds: List[int] = field(default_factory=lambda: [0])
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # {key: values in Hydra's sweep grammar}, e.g. {seed: "0,1,2"}; run by sparsegrow run
    sweep: Dict[str, Any] = field(default_factory=dict)


@dataclass
class StrategyVariant:
    """A strategy of an experiment file: a preset with some plugin keywords changed, and plugins
    added after its own (e.g. SparseGrowPlugin next to a preset of another strategy)."""

    name: str = MISSING                 # its run name
    preset: str = MISSING
    plugins: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # {plugin: {kw: value}}
    add_plugins: List[Any] = field(default_factory=list)   # [{name, plugin kwargs}]


@dataclass
class PresetConfig:
    base: Base = Base.naive
    base_args: Dict[str, Any] = field(default_factory=dict)   # the base template's own keywords
    plugins: List[Dict[str, Any]] = field(default_factory=list)  # [{name, plugin kwargs}]
    training: Optional[Dict[str, Any]] = None                   # overrides of TrainingConfig


AMP_MODES = ("off", "bf16", "fp16")

# (key, check, reason) range rules on TrainingConfig; types and enums are OmegaConf's job, but
# neither it nor Hydra constrains a value's range.
TRAINING_RANGES = (
    ("lr", lambda v: v > 0, "must be > 0"),
    ("momentum", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("weight_decay", lambda v: v >= 0, "must be >= 0"),
    ("epochs", lambda v: v >= 1, "must be >= 1"),
    ("batch_size", lambda v: v >= 1, "must be >= 1"),
    ("eval_batch_size", lambda v: v >= 1, "must be >= 1"),
    ("amp", lambda v: v is False or v in AMP_MODES, "must be one of off, bf16, fp16"),
)
