"""How much a growth event costs, relative to one training step.

Run: ``python -m sparsegrow.bench.growth_cost [--repeats N]``.

For a 2×400 MLP and a small CNN (Conv32-BN-ReLU-Pool-Conv64-BN-ReLU-Pool-Flatten-Linear128-Linear10)
on MNIST-sized input (1×28×28, batch 128, synthetic data: timing does not depend on the values)
it prints the median wall time of:

- one training step (forward, cross-entropy, backward, SGD with momentum);
- one growth event: a fresh ``Grower`` (torch.fx analysis) widening every expandable pair by ~10%
  with ``zero_out``, optimizer state padded;
- computing M and its SVD for every pair on 4 batches (``Grower.spectrum``);
- a full on_data growth event: M + SVD on 4 batches, growth size by the energy rule, widening
  every pair with ``on_data`` at density 0.5;

each also as a ratio to one training step. The quantities are measured round-robin (one of each
per repetition) so that a load change on a shared machine affects all of them alike, and torch
runs on ``--threads`` threads (default 1: on a busy 2-core machine, two spinning OpenMP threads
make single timings swing by 10×).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsegrow.growth import Grower

BATCH = 128


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 400),
                         nn.ReLU(), nn.Linear(400, 10))


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def _batches(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH,), generator=g))
            for _ in range(n)]


def _optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _step(model, opt, batch):
    opt.zero_grad()
    F.cross_entropy(model(batch[0]), batch[1]).backward()
    opt.step()


def _seconds(fn, args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(build, repeats: int) -> dict[str, float]:
    """Median seconds of each quantity for the model ``build()`` makes."""
    torch.manual_seed(0)
    base = build()
    opt = _optimizer(base)
    data = _batches(4)
    for batch in data:  # warm up and create optimizer state
        _step(base, opt, batch)

    def fresh():
        model = copy.deepcopy(base)
        optimizer = _optimizer(model)
        _step(model, optimizer, data[0])
        return model, optimizer

    def grow(model, optimizer):
        grower = Grower(model, optimizer=optimizer)
        grower.widen_many({p.producer: max(1, round(0.1 * grower.widths()[p.producer]))
                           for p in grower.pairs}, init="zero_out")

    def spectrum(model, _):
        Grower(model).spectrum(data, F.cross_entropy)

    def on_data(model, optimizer):
        grower = Grower(model, optimizer=optimizer)
        spectra = grower.spectrum(data, F.cross_entropy)
        sizes = grower.growth_sizes(spectra, energy=0.9, min_units=1, max_ratio=0.25)
        grower.widen_many(sizes, init="on_data", spectra_by_layer=spectra, init_density=0.5)

    timed = {"growth event (zero_out, +10%)": grow, "M + SVD (4 batches)": spectrum,
             "on_data event (M + SVD + widen)": on_data}
    times = {"train step": [], **{key: [] for key in timed}}
    for _ in range(repeats):
        for _ in range(3):
            times["train step"].append(_seconds(_step, (base, opt, data[0])))
        for key, fn in timed.items():
            times[key].append(_seconds(fn, fresh()))
    return {key: statistics.median(values) for key, values in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per quantity")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, "
          f"median of {args.repeats} runs (train step: {args.repeats * 3})")
    for name, build in (("MLP 784-400-400-10", mlp), ("small CNN 32-64-128-10", small_cnn)):
        result = measure(build, args.repeats)
        step = result["train step"]
        print(f"\n{name}")
        for key, seconds in result.items():
            print(f"  {key:<34} {seconds * 1e3:9.2f} ms   {seconds / step:7.2f} × train step")


if __name__ == "__main__":
    main()
