"""GIFtMetric: growth-induced forgetting measured at the moment of growth.

A growth plugin calls :meth:`GIFtMetric.on_growth_start` just before it changes the model and
:meth:`GIFtMetric.on_growth_end` just after (no training in between); the metric evaluates the
model on the experiences of ``stream`` that precede the current one, each time on the same first
``max_samples`` samples, in eval mode (the train/eval mode of every module is restored), with the
global RNG state saved and restored so that training is identical with and without the metric.
The values are emitted at the evaluator's next callback (the same training iteration).
"""

from __future__ import annotations

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from sparsegrow.growth import count_parameters
from sparsegrow.plugins.common import rng_preserved, timed


class GIFtMetric(PluginMetric[float]):
    """Accuracy on earlier experiences just before and after each growth event, and model size.

    Emits at every growth event (x = ``strategy.clock.train_iterations``):
    ``GIFt/acc_before_growth``, ``GIFt/acc_after_growth``, ``GIFt/at_growth`` (before − after;
    fractions in [0, 1], mean over the experiences before the current one), ``Model/params``,
    ``Model/width/<producer>``, ``Model/frozen_fraction/<parameter>`` (and, with subspace
    gating, ``Model/subspace_dims/<layer>``: protected input directions); and ``Model/params``
    at the end of every training experience. ``timings["gift"]`` accumulates the seconds its
    evaluations take: a measurement inside ``train()`` that runners leave out of training time.

    :param stream: the evaluation stream whose earlier experiences are measured.
    :param max_samples: samples per experience used for the measurement.
    :param batch_size: evaluation batch size.
    """

    def __init__(self, *, stream, max_samples: int = 2000, batch_size: int = 500):
        super().__init__()
        self.stream = stream
        self.max_samples = max_samples
        self.batch_size = batch_size
        self._data: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._before: float | None = None
        self._pending: list[MetricValue] = []
        self.events: list[dict] = []
        self.timings: dict[str, float] = {"gift": 0.0}

    # -- measurement -----------------------------------------------------------------------
    def _samples(self, index: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if index not in self._data:
            dataset = self.stream[index].dataset.eval()
            n = min(len(dataset), self.max_samples)
            items = [dataset[i] for i in range(n)]
            x = torch.stack([item[0] for item in items])
            y = torch.as_tensor([int(item[1]) for item in items])
            self._data[index] = (x, y)
        x, y = self._data[index]
        return x.to(device), y.to(device)

    @torch.no_grad()
    def _accuracy(self, strategy) -> float | None:
        current = strategy.experience.current_experience
        earlier = [i for i in range(len(self.stream)) if i < current]
        if not earlier:
            return None
        model = strategy.model
        modes = {m: m.training for m in model.modules()}
        model.eval()
        try:
            with rng_preserved(), timed(self.timings, "gift"):
                accs = []
                for i in earlier:
                    x, y = self._samples(i, strategy.device)
                    correct = sum(int((model(x[s:s + self.batch_size]).argmax(1)
                                       == y[s:s + self.batch_size]).sum())
                                  for s in range(0, len(y), self.batch_size))
                    accs.append(correct / len(y))
        finally:
            for m, mode in modes.items():
                m.training = mode
        return sum(accs) / len(accs)

    # -- growth listener protocol ----------------------------------------------------------
    def on_growth_start(self, strategy) -> None:
        self._before = self._accuracy(strategy)

    def on_growth_end(self, strategy, event: dict) -> None:
        after = self._accuracy(strategy)
        x = int(strategy.clock.train_iterations)
        values = {"Model/params": count_parameters(strategy.model)}
        values.update({f"Model/width/{n}": w for n, w in event.get("widths", {}).items()})
        values.update({f"Model/frozen_fraction/{n}": f
                       for n, f in event.get("frozen_fraction", {}).items()})
        values.update({f"Model/subspace_dims/{n}": k
                       for n, k in event.get("subspace_dims", {}).items()})
        if self._before is not None and after is not None:
            values.update({"GIFt/acc_before_growth": self._before,
                           "GIFt/acc_after_growth": after,
                           "GIFt/at_growth": self._before - after})
        self.events.append({"x": x, **values})
        self._pending += [MetricValue(self, name, value, x) for name, value in values.items()]
        self._before = None

    # -- Avalanche metric protocol ---------------------------------------------------------
    def _flush(self):
        out, self._pending = self._pending, []
        return out

    def before_training_iteration(self, strategy):
        return self._flush()

    def after_training_iteration(self, strategy):
        return self._flush()

    def after_training_exp(self, strategy):
        x = int(strategy.clock.train_iterations)
        return self._flush() + [MetricValue(self, "Model/params",
                                            count_parameters(strategy.model), x)]

    def result(self):
        return self.events[-1].get("GIFt/at_growth") if self.events else None

    def reset(self):
        self._pending = []

    def __str__(self):
        return "GIFt"
