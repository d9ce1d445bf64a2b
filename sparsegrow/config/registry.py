"""Bases and plugins a strategy preset can name: Avalanche's templates and plugins and ours,
imported lazily (Avalanche is slow to import and not needed to read a YAML)."""

from __future__ import annotations

import difflib
import importlib

from sparsegrow.errors import ConfigError

PLUGINS = {
    "sparsegrow": ("sparsegrow.plugins", "SparseGrowPlugin"),
    "growth": ("sparsegrow.plugins", "GrowthPlugin"),
    "freezing": ("sparsegrow.plugins", "FreezingPlugin"),
    "ewc": ("avalanche.training.plugins", "EWCPlugin"),
    "si": ("sparsegrow.plugins.synaptic_intelligence", "SynapticIntelligencePlugin"),
    "lwf": ("avalanche.training.plugins", "LwFPlugin"),
    "replay": ("avalanche.training.plugins", "ReplayPlugin"),
    "mas": ("avalanche.training.plugins", "MASPlugin"),
    "agem": ("avalanche.training.plugins", "AGEMPlugin"),
    "gem": ("avalanche.training.plugins", "GEMPlugin"),
    "rwalk": ("avalanche.training.plugins", "RWalkPlugin"),
    "gdumb": ("avalanche.training.plugins", "GDumbPlugin"),
    "lfl": ("avalanche.training.plugins", "LFLPlugin"),
    "cope": ("avalanche.training.plugins", "CoPEPlugin"),
    "gss": ("avalanche.training.plugins", "GSS_greedyPlugin"),
    "mir": ("avalanche.training.plugins", "MIRPlugin"),
}

# each base: Avalanche's template (in avalanche.training), and the keywords of its own that a
# preset may give it (base_args); the runner gives every template the training keywords
BASES = {
    "naive": ("Naive", ()),
    "joint": ("JointTraining", ()),
    "cumulative": ("Cumulative", ()),
    "der": ("DER", ("mem_size", "batch_size_mem", "alpha", "beta")),
    "er_ace": ("ER_ACE", ("mem_size", "batch_size_mem")),
    # its feature extractor is the model less its head (runner.build.feature_extractor)
    "er_aml": ("ER_AML", ("mem_size", "batch_size_mem", "temp", "base_temp", "same_task_neg")),
    # its generator is Avalanche's default VAE, for MNIST's input shape (runner.build)
    "generative_replay": ("GenerativeReplay", ("replay_size", "increasing_replay_size",
                                               "is_weighted_replay", "weight_replay_loss_factor",
                                               "weight_replay_loss")),
}


def check_base_args(base: str, base_args, source) -> dict:
    """``base_args`` as keywords of ``base``'s template; one line naming a key it lacks."""
    args = dict(base_args or {})
    known = BASES[base][1]
    for key in args:
        if key not in known:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise ConfigError(f"{source}: base_args.{key} is not a keyword of base {base} "
                              f"({takes})")
    return args


def plugin_class(name: str) -> type:
    """The plugin class registered as ``name``."""
    if name not in PLUGINS:
        close = difflib.get_close_matches(name, PLUGINS, n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown plugin '{name}' (known: {', '.join(PLUGINS)}){hint}")
    module, attr = PLUGINS[name]
    return getattr(importlib.import_module(module), attr)
