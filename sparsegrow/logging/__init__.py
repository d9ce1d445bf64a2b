"""Avalanche loggers (:class:`WandBLogger`: forgetting curves and growth events in W&B)."""

from .wandb_logger import WandBLogger, resolve_mode

__all__ = ["WandBLogger", "resolve_mode"]
