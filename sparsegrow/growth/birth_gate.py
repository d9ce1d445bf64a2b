"""Birth gating: at evaluation, each input reaches only the units that existed when data like it
was learned.

Units grown during experience k were fit to experience k's data; on inputs of earlier
experiences they can only interfere, and under protection that interference is most of what
growth costs in forgetting (RESULTS.md table 7, "later units silenced"). The gate keeps one
prototype per experience, the mean of its training inputs, judges each evaluated input by its
nearest prototype (Euclidean distance on the flattened input, as Active Dendrites networks infer
their context) and silences, for that input, every unit born after the judged experience. No
task label is used: this is task-agnostic inference of *which units to trust*, something a
fixed-width network has no use for, because all its units are equally old.

The nearest mean is a weak judge where experiences share most input statistics, and a wrong
judgement silences the units that learned the input. The gate therefore measures its judge:
when it records an experience it routes a sample of that experience's inputs among all the
prototypes so far (``routing``; RESULTS.md table 7d). The measure needs no data of earlier
experiences. It decides nothing by itself: on Rotated MNIST in 10° steps the judge routes only
about 60% of the inputs home and the gate still pays (RESULTS.md tables 7b and 7c), while on
class-incremental streams it costs accuracy, so the plugin's automatic mode arms the gate on
every stream that is not class-incremental (:class:`sparsegrow.plugins.GrowthPlugin`).

Where growth adds blocks (:mod:`sparsegrow.growth.blocks`), the gate keeps for each input the
block of the judged experience only (the initial units for the first experience): a block is a
column of its own, and the other blocks learned other experiences. The same holds in training,
where the judged experience is the one being learned (Avalanche's experience, not a label of
the input): the current block learns alone, as it will be evaluated.

The gate is plain PyTorch (no Avalanche); :class:`sparsegrow.plugins.GrowthPlugin` records an
experience after training on it and arms the gate for evaluation (with blocks, for training
too).
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn as nn

from sparsegrow.errors import GrowthError
from sparsegrow.growth.graph import ExpandablePair
from sparsegrow.growth.layers import width
from sparsegrow.growth.silence import silence_hook


def nearest_prototype(x: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of ``prototypes`` (Euclidean) for each flattened sample of x."""
    flat = x.flatten(1).to(prototypes.dtype)
    return torch.cdist(flat, prototypes).argmin(dim=1)


class BirthGate:
    """Per-input silencing of units born after the experience an input resembles.

    After each experience, :meth:`record` stores the experience's prototype and the producers'
    widths at its end; :meth:`attach` hooks the model so that, in eval mode, the units of each
    producer beyond its width at the judged experience reach the consumer as zeros. In train mode
    the hooks pass everything through, unless :meth:`attach` was given the experience in
    training.

    :param blocks: keep the judged experience's block only (the initial units for the first
        experience; growth in blocks), instead of every unit born by the judged experience.
    """

    def __init__(self, *, blocks: bool = False):
        self.blocks = blocks
        self.prototypes: list[torch.Tensor] = []    # one flattened mean input per experience
        self.widths: list[dict[str, int]] = []      # producer widths at each experience's end
        self.routing: list[float] = []   # share of each experience's inputs judged its own
        self.pairs: list[ExpandablePair] = []
        self._hooks: list = []
        self._judged: torch.Tensor | None = None

    def record(self, inputs: torch.Tensor, widths: dict[str, int],
               pairs: list[ExpandablePair]) -> None:
        """Add the experience just trained from a sample of its inputs (first dimension:
        samples): their mean is its prototype, and the share of them judged nearest to it among
        every prototype so far is its routing."""
        flat = inputs.detach().flatten(1).float()
        self.prototypes.append(flat.mean(0))
        home = len(self.prototypes) - 1
        self.routing.append((self.judge(flat) == home).float().mean().item())
        self.widths.append(dict(widths))
        self.pairs = list(pairs)

    def judge(self, x: torch.Tensor) -> torch.Tensor:
        """The experience whose prototype is nearest to each sample of ``x``."""
        return nearest_prototype(x, torch.stack(self.prototypes).to(x.device))

    @property
    def attached(self) -> bool:
        return bool(self._hooks)

    def attach(self, model: nn.Module, *, training: int | None = None) -> None:
        """Hook ``model`` (idempotent); does nothing before the first :meth:`record`.

        :param training: the experience being trained, with blocks only: in train mode every
            input is judged to be of it (its block: every unit grown since the last record).
        """
        if self.attached or not self.prototypes:
            return
        device = next(model.parameters()).device
        prototypes = torch.stack(self.prototypes).to(device)

        def judge(module, args):
            if not module.training:
                self._judged = nearest_prototype(args[0], prototypes)
            elif training is not None:
                self._judged = torch.full((len(args[0]),), training, device=device)
            else:
                self._judged = None

        self._hooks.append(model.register_forward_pre_hook(judge))
        for pair in self.pairs:
            widths = [w.get(pair.producer, 0) for w in self.widths]
            if self.blocks:
                # experience j's block: from the width at j-1's end to j's end (j = 0: the
                # initial units); the experience in training: everything grown since the last
                # record
                starts = torch.tensor([0] + widths, device=device)
                ends = torch.tensor(widths + [torch.iinfo(torch.int64).max], device=device)
                units = self._blocks(pair.consumer, model.get_submodule(pair.producer),
                                     starts, ends)
            else:
                units = self._limit(pair.consumer, torch.tensor(widths, device=device))
            self._hooks.append(silence_hook(model.get_submodule(pair.consumer), pair, units))

    def _judged_for(self, consumer: str, x: torch.Tensor) -> torch.Tensor | None:
        if self._judged is not None and len(x) != len(self._judged):
            raise GrowthError(f"birth gating: layer {consumer!r} sees {len(x)} samples "
                              f"where the model's input had {len(self._judged)}; the gate "
                              f"needs the batch dimension to stay first and whole")
        return self._judged

    def _limit(self, consumer: str, limits: torch.Tensor):
        def units(x):
            judged = self._judged_for(consumer, x)
            return None if judged is None else limits[judged]
        return units

    def _blocks(self, consumer: str, producer: nn.Module, starts: torch.Tensor,
                ends: torch.Tensor):
        def units(x):
            judged = self._judged_for(consumer, x)
            if judged is None:
                return None
            index = torch.arange(width(producer), device=x.device)   # grows in training
            return (index >= starts[judged, None]) & (index < ends[judged, None])
        return units

    def detach(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._judged = None

    def to(self, device) -> None:
        """Move the prototypes to ``device`` (the model's, e.g. after a CPU-mapped load)."""
        self.prototypes = [p.to(device) for p in self.prototypes]

    def state_dict(self) -> dict:
        return {"blocks": self.blocks, "prototypes": list(self.prototypes),
                "widths": list(self.widths),
                "routing": list(self.routing), "pairs": [asdict(p) for p in self.pairs]}

    def load_state_dict(self, state: dict) -> None:
        self.detach()
        self.blocks = state.get("blocks", False)   # absent from older checkpoints
        self.prototypes = list(state["prototypes"])
        self.widths = list(state["widths"])
        self.routing = list(state.get("routing", []))   # absent from checkpoints of 0.1
        self.pairs = [ExpandablePair(**p) for p in state["pairs"]]


PROTOTYPE_SAMPLES = 2048   # the mean of 2048 inputs is close enough to the whole experience's


def sample_inputs(dataset, *, device, seed: int, samples: int = PROTOTYPE_SAMPLES
                  ) -> torch.Tensor:
    """Up to ``samples`` random inputs of ``dataset`` (with its eval transforms when it has
    them), flattened: what :meth:`BirthGate.record` takes for one experience."""
    if hasattr(dataset, "eval"):
        dataset = dataset.eval()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)
    subset = torch.utils.data.Subset(dataset, order[:samples].tolist())
    # its own generator: a loader draws a seed, and the global RNG must not see the gate
    loader = torch.utils.data.DataLoader(subset, batch_size=512, generator=generator)
    return torch.cat([x.to(device).flatten(1).float() for x, *_ in loader])
