"""SparseGrow: grow networks in task-agnostic continual learning without growth-induced forgetting.

The growth engine (:mod:`sparsegrow.growth`) and the protection math
(:mod:`sparsegrow.protection`) are plain PyTorch. The Avalanche plugins, their option groups, the
recipes and the W&B logger are exported here lazily, so that ``import sparsegrow.growth`` does
not pay for importing Avalanche (about 6 s, 1 GB).
"""

__version__ = "0.2.0.dev0"     # the one source: pyproject.toml reads it (CHANGELOG.md: policy)

_PLUGINS = {
    "SparseGrowPlugin": "sparsegrow.plugins.sparsegrow",
    "GrowthPlugin": "sparsegrow.plugins.growth",
    "FreezingPlugin": "sparsegrow.plugins.freezing",
    "GrowthOptions": "sparsegrow.plugins.options",
    "ProtectionOptions": "sparsegrow.plugins.options",
    "GIFtMetric": "sparsegrow.plugins.gift",
    "WandBLogger": "sparsegrow.logging.wandb_logger",
}
_MODULES = ("recipes",)

__all__ = ["__version__", *_PLUGINS, *_MODULES]


def __getattr__(name):
    import importlib

    if name in _PLUGINS:
        return getattr(importlib.import_module(_PLUGINS[name]), name)
    if name in _MODULES:
        return importlib.import_module(f"sparsegrow.{name}")
    raise AttributeError(f"module 'sparsegrow' has no attribute {name!r}")
