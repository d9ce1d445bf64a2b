"""How much of a growing strategy's extra training time its bigger model explains.

A grown model costs more per training step than the model it grew from, whatever trains it: it
has more units, and on the CPU a convolution whose channel counts leave the ones oneDNN's
kernels are fastest at can cost more than its extra multiply-adds. That share of a growing
strategy's time is not the plugin's work, and a reference strategy (Naive) given the grown model
would pay it too.

:func:`grown_models` rebuilds the experiment's model at every width a run trained at (the
run's growth events replayed by :meth:`Grower.replay`); :func:`step_ratios` times one training
step of each (forward, cross-entropy, backward, SGD with momentum) on the same synthetic batch,
round-robin so that a load change on a shared machine affects all of them alike, relative to
the first; :func:`model_share` turns them into the seconds the reference would have spent more
had it trained the grown models over the same iterations.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def grown_models(experiment: Path, events: list[dict]) -> tuple[list[nn.Module], tuple, int]:
    """The experiment's model before growth and after each of ``events`` (a run's
    ``events.json``), with the benchmark's input shape and number of classes."""
    from sparsegrow.config import load_experiment
    from sparsegrow.growth import Grower
    from sparsegrow.runner.run import build_benchmark_for, build_model_for

    plan = load_experiment(experiment)
    bench = build_benchmark_for(plan, 0)
    model = build_model_for(plan, bench)
    models = [copy.deepcopy(model)]
    grower = Grower(model, example=torch.zeros(2, *bench.input_shape))
    for event in events:
        grower.replay(event["operations"])
        models.append(copy.deepcopy(model))
    return models, tuple(bench.input_shape), bench.n_classes


def step_ratios(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor,
                repeats: int = 10) -> list[float]:
    """Median time of one training step of each model on ``(x, y)``, relative to the first."""
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]
    times: list[list[float]] = [[] for _ in models]
    for r in range(repeats + 1):    # the first round warms up (allocations, kernel choice)
        for model, optimizer, seconds in zip(models, optimizers, times):
            start = time.perf_counter()
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            if r:
                seconds.append(time.perf_counter() - start)
    first = statistics.median(times[0])
    return [statistics.median(t) / first for t in times]


def model_share(ratios: list[float], growth_iterations: list[int], total_iterations: int,
                seconds_per_step: float) -> float:
    """Seconds a reference whose steps take ``seconds_per_step`` would spend more training the
    grown models: ``ratios[k]`` applies from growth event k (at ``growth_iterations[k - 1]``;
    the initial model from 0) up to the next event or ``total_iterations``."""
    bounds = [0, *growth_iterations, total_iterations]
    extra_steps = sum((end - start) * (ratio - 1.0)
                      for start, end, ratio in zip(bounds, bounds[1:], ratios))
    return seconds_per_step * extra_steps
