"""What a checkpoint keeps of Avalanche's own plugins and templates, and how it is put back.

Our plugins have ``state_dict``; Avalanche's (EWC, LwF, Replay, ...) are checkpointed as their
attribute dicts. Three kinds of state need more than that:

- a memory sampler that is an iterator (A-GEM's, MIR's) cannot be pickled: the checkpoint leaves
  it out and it is made again from the memory the plugin keeps (:data:`SAMPLERS`). Its random
  draws start when it is first read, in the next experience, after the RNG states are restored,
  so a resumed run samples what the uninterrupted one did;
- what a template keeps besides the model: the replay buffer of DER, ER-ACE and ER-AML;
- GenerativeReplay's generator, a VAE trained by a second strategy inside the template, with its
  optimizer's moments and the replay plugins' flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from sparsegrow.runner import checkpoint


def _agem_sampler(plugin) -> None:
    """A-GEM's memory sampler made again from its kept buffers by its own ``update_memory``
    (the last buffer, already cut to ``patterns_per_experience``, is appended as it is)."""
    if plugin.buffers:
        *kept, last = plugin.buffers
        plugin.buffers = kept
        plugin.update_memory(last)


# the attribute MIR's note keeps on the plugin (pickled with its other attributes)
MIR_EXCLUDED = "sparsegrow_excluded_classes"


def _mir_note(plugin, strategy) -> None:
    """The classes MIR's sampler leaves out: those of the experience's last training minibatch,
    which it reads from the strategy at the end of the experience and does not keep."""
    setattr(plugin, MIR_EXCLUDED, torch.unique(strategy.mb_y).cpu().tolist())


def _mir_sampler(plugin) -> None:
    """MIR's replay sampler made again as its ``after_training_exp`` makes it (Avalanche
    0.6.0): its buffer less the noted classes, cycled in shuffled minibatches of ``subsample``,
    none when that leaves no more than ``batch_size_mem`` samples."""
    from avalanche.benchmarks.utils import concat_datasets
    from avalanche.training.plugins.mir import cycle

    excluded = getattr(plugin, MIR_EXCLUDED)
    buffer = concat_datasets([group.buffer for key, group in
                              plugin.storage_policy.buffer_groups.items()
                              if int(key) not in excluded])
    plugin.replay_loader = (cycle(DataLoader(buffer, batch_size=plugin.subsample, shuffle=True))
                            if len(buffer) > plugin.batch_size_mem else None)


@dataclass(frozen=True)
class Sampler:
    """How one Avalanche plugin's memory sampler is checkpointed.

    :param left_out: the attributes the checkpoint leaves out.
    :param remake: makes them again from the plugin's other attributes, at a resume.
    :param note: ``note(plugin, strategy)``, after each experience's training: keeps on the
        plugin what ``remake`` needs that the plugin reads from the strategy and drops.
    """

    left_out: tuple[str, ...]
    remake: Callable
    note: Callable | None = None


SAMPLERS = {"AGEMPlugin": Sampler(("buffer_dataloader", "buffer_dliter"), _agem_sampler),
            "MIRPlugin": Sampler(("replay_loader",), _mir_sampler, _mir_note)}


def _sampler(plugin) -> Sampler | None:
    return SAMPLERS.get(type(plugin).__name__)


class SamplerNotes(SupervisedPlugin, supports_distributed=False):
    """At the end of each experience's training, while the strategy still holds its last
    minibatch: what the samplers of ``plugins`` need at a resume (:attr:`Sampler.note`)."""

    def __init__(self, plugins):
        super().__init__()
        self.notes = [(p, sampler.note) for p in plugins
                      if (sampler := _sampler(p)) is not None and sampler.note is not None]

    def after_training_exp(self, strategy, **kwargs):
        for plugin, note in self.notes:
            note(plugin, strategy)


def plugin_states(plugins) -> list:
    """Our plugins' state_dicts; Avalanche's plugins as their attribute dicts, less a memory
    sampler that cannot be pickled (:data:`SAMPLERS`)."""
    states = []
    for plugin in plugins:
        if hasattr(plugin, "state_dict"):
            states.append(plugin.state_dict())
            continue
        sampler = _sampler(plugin)
        left_out = sampler.left_out if sampler is not None else ()
        states.append({k: v for k, v in vars(plugin).items() if k not in left_out})
    return states


def load_plugin_states(plugins, states, device) -> None:
    """Restore the plugins' states with their tensors on ``device``, the model's."""
    for plugin, state in zip(plugins, states):
        state = checkpoint.on_device(state, device)
        if hasattr(plugin, "load_state_dict"):
            plugin.load_state_dict(state)
            continue
        vars(plugin).update(state)
        sampler = _sampler(plugin)
        if sampler is not None:
            sampler.remake(plugin)


def clock_state(strategy) -> dict:
    return {k: v for k, v in vars(strategy.clock).items() if isinstance(v, int)}


# GenerativeReplayPlugin's attributes that change as the stream goes on (the others are its
# arguments, or copies it makes again at each experience's start)
_REPLAY_FLAGS = ("untrained_solver", "weight_replay_loss")


def _replay_plugins(strategy) -> list:
    from avalanche.training.plugins import GenerativeReplayPlugin

    generator = strategy.generator_strategy
    return [p for p in (*strategy.plugins, *generator.plugins)
            if isinstance(p, GenerativeReplayPlugin)]


def template_state(strategy) -> dict:
    """What the template itself keeps across experiences besides the model: the replay buffer
    of a template that has its own (DER, ER-ACE, ER-AML; Replay's is its plugin's state), and
    GenerativeReplay's generator."""
    state = {k: v for k, v in vars(strategy).items() if k == "storage_policy"}
    generator = getattr(strategy, "generator_strategy", None)
    if generator is not None:
        state["generator"] = {
            "model": generator.model.state_dict(), "optimizer": generator.optimizer.state_dict(),
            "clock": clock_state(generator),
            "replay": [{k: getattr(p, k) for k in _REPLAY_FLAGS}
                       for p in _replay_plugins(strategy)]}
    return state


def load_template_state(strategy, state: dict) -> None:
    """Put back what :func:`template_state` kept."""
    generator_state = state.get("generator")
    vars(strategy).update({k: v for k, v in state.items() if k != "generator"})
    if generator_state is None:
        return
    generator = strategy.generator_strategy
    generator.model.load_state_dict(generator_state["model"])
    generator.optimizer.load_state_dict(generator_state["optimizer"])
    # as for the solver's optimizer: Avalanche keeps the moments only of parameters it knows
    generator.optimized_param_id = dict(generator.model.named_parameters())
    vars(generator.clock).update(generator_state["clock"])
    for plugin, flags in zip(_replay_plugins(strategy), generator_state["replay"]):
        vars(plugin).update(flags)
