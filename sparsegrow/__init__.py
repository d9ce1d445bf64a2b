"""SparseGrow: grow networks in task-agnostic continual learning without growth-induced forgetting.

The growth engine (:mod:`sparsegrow.growth`) and the protection math
(:mod:`sparsegrow.protection`) are plain PyTorch. The Avalanche plugins and the W&B logger are
exported here lazily, so that ``import sparsegrow.growth`` does not pay for importing Avalanche
(about 6 s, 1 GB).
"""

__version__ = "0.2.0.dev0"     # the one source: pyproject.toml reads it (CHANGELOG.md: policy)

_PLUGINS = {
    "SparseGrowPlugin": "sparsegrow.plugins.sparsegrow",
    "GrowthPlugin": "sparsegrow.plugins.growth",
    "FreezingPlugin": "sparsegrow.plugins.freezing",
    "GIFtMetric": "sparsegrow.plugins.gift",
    "WandBLogger": "sparsegrow.logging.wandb_logger",
}

__all__ = ["__version__", *_PLUGINS]


def __getattr__(name):
    if name in _PLUGINS:
        import importlib

        return getattr(importlib.import_module(_PLUGINS[name]), name)
    raise AttributeError(f"module 'sparsegrow' has no attribute {name!r}")
