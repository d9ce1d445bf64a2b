"""Build what one run needs from a validated config: device, optimizer, plugins, strategy."""

from __future__ import annotations

import fcntl
import inspect
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sparsegrow.config import plugin_class
from sparsegrow.config.registry import BASES, check_base_args
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


class GpuClaims:
    """The GPU of each process that runs jobs, claimed once and held until the process exits.

    Launchers reuse worker processes (joblib's loky pool): a rule on the job number alone
    (job mod n GPUs) sends a worker's next job to a GPU another worker may still be training
    on, while a GPU whose job finished early idles. Instead a process claims a GPU with an
    exclusive ``flock`` on a lock file, keeps it for every job it runs, and the system releases
    it when the process ends. With at most as many workers as GPUs (``n_jobs`` = GPU count)
    no two jobs ever share a GPU; with more, the extra workers share (job number mod n).
    """

    def __init__(self, lock_dir: Path | None = None):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "-")
        self.lock_dir = Path(lock_dir or Path(tempfile.gettempdir())
                             / f"sparsegrow-gpus-{os.getuid()}-{visible}")
        self._held: tuple[int, object] | None = None   # (GPU, its open lock file)

    def gpu(self, job: int, n_gpus: int) -> int:
        """This process's GPU; the first claim tries the GPUs from ``job`` mod ``n_gpus`` on."""
        if self._held is not None:
            return self._held[0]
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for k in range(n_gpus):
            gpu = (job + k) % n_gpus
            lock = open(self.lock_dir / f"gpu{gpu}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._held = (gpu, lock)
            return gpu
        return job % n_gpus   # more workers than GPUs: share, without a claim


GPU_CLAIMS = GpuClaims()


def use_gpu_slot(slot: int) -> None:
    """Make this process's GPU (:class:`GpuClaims`; ``slot``: the job's number) the current
    one, so that ``device: auto`` (``cuda``) means it for the model and every tensor a plugin
    creates; a job given one GPU (SLURM, ``CUDA_VISIBLE_DEVICES``) keeps it."""
    if torch.cuda.device_count() > 1:
        torch.cuda.set_device(GPU_CLAIMS.gpu(slot, torch.cuda.device_count()))


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


def feature_extractor(model: nn.Module) -> nn.Module:
    """ER-AML's feature extractor: the model less its last module (the head), sharing the
    model's modules, so that growth reaches both."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        raise ConfigError("base er_aml needs a feature extractor, which the runner takes as the "
                          "model less its last module: that needs an nn.Sequential of at least "
                          f"two modules (the model is a {type(model).__name__}); use another "
                          "base or an MLP model")
    # a plain Sequential: slicing would call the model's own class with positional modules
    return nn.Sequential(OrderedDict(list(model.named_children())[:-1]))


def check_er_aml(base_args: dict, *, batch_size: int, bench) -> None:
    """ER_AML draws a full training minibatch of each class from its class-balanced buffer
    (Avalanche 0.6.0 cycles a ``drop_last`` loader per class): once the buffer is shared by
    more classes than leave each a minibatch, that loader is empty and training waits forever,
    without a message. One line instead."""
    from avalanche.training import ER_AML

    mem_size = base_args.get("mem_size",
                             inspect.signature(ER_AML).parameters["mem_size"].default)
    # from the labels: domain streams do not record their classes per experience
    classes = len(set().union(*(e.dataset.targets.uniques for e in bench.train_stream)))
    share = mem_size // max(classes, 1)
    if share < batch_size:
        raise ConfigError(f"base er_aml: mem_size {mem_size} leaves {share} samples "
                          f"per class among the stream's {classes} classes, fewer than "
                          f"training.batch_size {batch_size}: Avalanche 0.6.0's ER_AML then "
                          "waits forever for a full minibatch of one class; set mem_size to at "
                          f"least {classes * batch_size} or lower the batch size")


# the input shape of the VAE GenerativeReplay builds as its generator in Avalanche 0.6.0
GENERATOR_INPUT = (1, 28, 28)


def check_generative_replay(bench) -> None:
    """GenerativeReplay's default generator is an MLP VAE for 1×28×28 inputs: one line for
    another input shape, instead of a shape error from inside its first replay."""
    if tuple(bench.input_shape) != GENERATOR_INPUT:
        raise ConfigError(f"base generative_replay: Avalanche's generator (its MLP VAE) takes "
                          f"inputs of shape {GENERATOR_INPUT}, the benchmark's are "
                          f"{tuple(bench.input_shape)}; use it on an MNIST benchmark")


def features_interface(model: nn.Module) -> None:
    """Avalanche's LFL compares the model's features (``get_features``) and accepts only
    models of its ``BaseModel`` interface: declare the model one where it has the method (the
    MLP and the small CNN), one line where it has not."""
    from avalanche.models import BaseModel

    if not callable(getattr(model, "get_features", None)):
        raise ConfigError(f"plugin lfl compares the model's features (its get_features "
                          f"method), which the model ({type(model).__name__}) lacks; use the "
                          f"mlp or small_cnn model")
    BaseModel.register(type(model))


def build_strategy(*, base: str, model: nn.Module, optimizer, plugins: list, training,
                   device, bench, logger, base_args=None):
    """An Avalanche strategy with accuracy metrics (+ GIFt when a plugin grows the model)
    reported only to ``logger`` (no text output), in ``training.amp``'s precision."""
    import avalanche.training
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    from sparsegrow.plugins import GIFtMetric

    metrics = [accuracy_metrics(experience=True, stream=True)]
    if any(grows(p) for p in plugins):
        metrics.append(GIFtMetric(stream=bench.test_stream))
    evaluator = EvaluationPlugin(*metrics, loggers=[logger])
    template = getattr(avalanche.training, BASES[base][0])
    template = amp_template(template, training.amp)
    kwargs = check_base_args(base, base_args, "preset")
    if base == "er_aml":
        check_er_aml(kwargs, batch_size=training.batch_size, bench=bench)
        kwargs["feature_extractor"] = feature_extractor(model)
    if base == "generative_replay":
        check_generative_replay(bench)
    if any(type(p).__name__ == "LFLPlugin" for p in plugins):
        features_interface(model)
    strategy = template(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
                        train_mb_size=training.batch_size, train_epochs=training.epochs,
                        eval_mb_size=training.eval_batch_size, device=device, plugins=plugins,
                        evaluator=evaluator, **kwargs)
    if base == "generative_replay":
        # its generator's strategy logs to the console with Avalanche's default evaluator:
        # the runner reports the run's progress itself
        strategy.generator_strategy.evaluator.loggers.clear()
    return strategy


def resolved_container(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
