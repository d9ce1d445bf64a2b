"""Build what one run needs from a validated config: device, optimizer, plugins, strategy."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sparsegrow.config import plugin_class
from sparsegrow.config.loading import named_section
from sparsegrow.errors import ConfigError
from sparsegrow.runner.amp import amp_template

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device: cuda requested but torch sees no CUDA device")
    return torch.device(name)


def gpu_for_slot(slot: int, n_gpus: int) -> int:
    """The GPU of the ``slot``-th job: launched jobs take the GPUs in turn."""
    return slot % n_gpus


def use_gpu_slot(slot: int) -> None:
    """Make the ``slot``-th job's GPU the current one, so that ``device: auto`` (``cuda``)
    means it for the model and every tensor a plugin creates; a job given one GPU (SLURM,
    ``CUDA_VISIBLE_DEVICES``) keeps it."""
    if torch.cuda.device_count() > 1:
        torch.cuda.set_device(gpu_for_slot(slot, torch.cuda.device_count()))


def make_optimizer(training: DictConfig, param_groups) -> torch.optim.Optimizer:
    """``param_groups``: parameters, or a list of ``{"params": [...]}`` groups."""
    name = training.optimizer.value if hasattr(training.optimizer, "value") else training.optimizer
    kwargs = {"lr": training.lr, "weight_decay": training.weight_decay}
    if name == "sgd":
        kwargs["momentum"] = training.momentum
    return OPTIMIZERS[name](param_groups, **kwargs)


def build_plugins(preset: DictConfig, source) -> list:
    plugins = []
    for i, entry in enumerate(preset.plugins):
        name, kwargs = named_section(entry, f"plugins[{i}]", source)
        plugins.append(plugin_class(name)(**kwargs))
    return plugins


def grows(plugin) -> bool:
    return bool(getattr(plugin, "grows_model", False))


def _parts(plugins, kind: str) -> list:
    """The plugins doing ``kind`` ("growth" or "freezing"), SparseGrowPlugin's part included."""
    from sparsegrow.plugins import FreezingPlugin, GrowthPlugin, SparseGrowPlugin

    cls = {"growth": GrowthPlugin, "freezing": FreezingPlugin}[kind]
    out = []
    for p in plugins:
        part = getattr(p, kind) if isinstance(p, SparseGrowPlugin) else p
        if isinstance(part, cls):
            out.append(part)
    return out


def growth_parts(plugins) -> list:
    """The GrowthPlugins among ``plugins`` (SparseGrowPlugin's growth part included)."""
    return _parts(plugins, "growth")


def protection(plugins) -> dict[str, float]:
    """What the freezing parts of ``plugins`` protect now: ``frozen/<parameter>`` (fraction of
    entries frozen, mask gating) and ``subspace_dims/<layer>`` (protected input directions,
    subspace gating)."""
    out: dict[str, float] = {}
    for part in _parts(plugins, "freezing"):
        if part.uses_masks:
            out.update({f"frozen/{n}": f for n, f in part.frozen_fraction().items()})
        if part.uses_subspace:
            out.update({f"subspace_dims/{n}": k for n, k in part.subspace_dims().items()})
    return out


def build_strategy(*, base: str, model: nn.Module, optimizer, plugins: list, training,
                   device, bench, logger):
    """An Avalanche strategy with accuracy metrics (+ GIFt when a plugin grows the model)
    reported only to ``logger`` (no text output), in ``training.amp``'s precision."""
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Cumulative, JointTraining, Naive
    from avalanche.training.plugins import EvaluationPlugin

    from sparsegrow.plugins import GIFtMetric

    metrics = [accuracy_metrics(experience=True, stream=True)]
    if any(grows(p) for p in plugins):
        metrics.append(GIFtMetric(stream=bench.test_stream))
    evaluator = EvaluationPlugin(*metrics, loggers=[logger])
    template = {"naive": Naive, "joint": JointTraining, "cumulative": Cumulative}[base]
    template = amp_template(template, training.amp)
    return template(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
                    train_mb_size=training.batch_size, train_epochs=training.epochs,
                    eval_mb_size=training.eval_batch_size, device=device, plugins=plugins,
                    evaluator=evaluator)


def resolved_container(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
