"""Plugins a strategy preset can name: ours and Avalanche's, imported lazily (Avalanche is slow
to import and not needed to read a YAML)."""

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
}


def plugin_class(name: str) -> type:
    """The plugin class registered as ``name``."""
    if name not in PLUGINS:
        close = difflib.get_close_matches(name, PLUGINS, n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown plugin '{name}' (known: {', '.join(PLUGINS)}){hint}")
    module, attr = PLUGINS[name]
    return getattr(importlib.import_module(module), attr)
