"""What building and reading the MNIST streams costs: time and memory of long streams.

Run: ``sparsegrow bench streams [--experiences 10 100] [--samples 2000] [--threads 2]``.

For Permuted and Rotated MNIST with each number of experiences, each in a fresh process (so
that memory freed by an earlier measurement is not reused and hidden), it prints the time to
build the benchmark and how much the process's resident memory grew (MNIST is loaded before).
Then, on one experience, the cost per sample of reading the training set through Avalanche's
dataset (what every training epoch pays, per-sample transform included), the one-off time to
transform and cache one evaluation set, and, for comparison, torchvision's own per-sample
``rotate`` that the Rotated MNIST transform replaces. Torch runs on ``--threads`` threads
(default: torch's own choice, as the runner leaves it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch


def rss_mb() -> float:
    """Current resident memory of this process in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def per_sample_seconds(read, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        read(i)
    return (time.perf_counter() - start) / n


def measure(name: str, n_experiences: int, samples: int) -> None:
    from sparsegrow.benchmarks import build_benchmark, load_mnist

    load_mnist()
    before, start = rss_mb(), time.perf_counter()
    bench = build_benchmark(name, n_experiences=n_experiences)
    built = time.perf_counter() - start
    print(f"{name} {n_experiences:>4} experiences: build {built:6.2f} s, "
          f"memory +{rss_mb() - before:6.0f} MB")
    train, test = bench.train_stream[1].dataset, bench.test_stream[1].dataset
    read = per_sample_seconds(lambda i: train[i], samples)
    print(f"    read a training sample: {read * 1e6:6.0f} µs  ({read * len(train):5.1f} s per "
          f"{len(train)}-sample epoch)")
    before, start = rss_mb(), time.perf_counter()
    test[0]  # the first access transforms and caches the whole evaluation set
    print(f"    cache one evaluation set: {time.perf_counter() - start:5.2f} s, "
          f"+{rss_mb() - before:4.0f} MB")


def main(argv=None) -> None:
    from torchvision.transforms.functional import InterpolationMode, rotate

    from sparsegrow.benchmarks import load_mnist
    from sparsegrow.benchmarks.mnist import Rotate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiences", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--samples", type=int, default=2000, help="samples read per timing")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--only", nargs=2, metavar=("NAME", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import avalanche.benchmarks  # noqa: F401  (its import time is not the streams' cost)

    if args.only:  # one measurement, in the fresh process the parent started
        measure(args.only[0], int(args.only[1]), args.samples)
        return
    start = time.perf_counter()
    images = load_mnist()["train"][0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"MNIST load: {time.perf_counter() - start:.2f} s (once per process)", flush=True)
    common = ["--samples", str(args.samples)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    for name in ("permuted_mnist", "rotated_mnist"):
        for n in args.experiences:
            subprocess.run([sys.executable, "-m", "sparsegrow.bench.streams", "--only", name,
                            str(n), *common], check=True)
    ours, angle = Rotate(33.0), 33.0
    ours(images[0])  # builds the map once, as the first training sample does
    gather = per_sample_seconds(lambda i: ours(images[i]), args.samples)
    grid = per_sample_seconds(lambda i: rotate(images[i], angle,
                                               interpolation=InterpolationMode.BILINEAR),
                              args.samples)
    print(f"rotate one image by 33°: precomputed gather {gather * 1e6:.0f} µs, torchvision "
          f"{grid * 1e6:.0f} µs ({grid / gather:.1f}× slower)")


if __name__ == "__main__":
    main()
