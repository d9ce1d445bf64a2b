"""How well the birth gate's judge tells a stream's experiences apart, from their inputs alone.

Run: ``sparsegrow bench routing [--out results/routing/routing.json]``.

For each stream of RESULTS.md table 7c it records every training experience in a
:class:`~sparsegrow.growth.birth_gate.BirthGate` as the plugin does (the same sample of 2,048
inputs, the same seeds) and writes the share of each experience's inputs judged nearest to its
own mean input among every mean so far, and whether the automatic gate arms there (on every
stream that is not class-incremental). No model is trained: the judge depends on the inputs
only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparsegrow.growth.birth_gate import BirthGate, sample_inputs
from sparsegrow.protection.classes import is_class_incremental

# the streams of table 7c, as their experiment files build them
STREAMS = {
    "Permuted MNIST 20": ("permuted_mnist", {"n_experiences": 20}),
    "Rotated MNIST, 10° steps": ("rotated_mnist", {"n_experiences": 10,
                                                   "angles": list(range(0, 100, 10))}),
    "Split MNIST 5": ("split_mnist", {"n_experiences": 5}),
}


def routing(train_stream, *, seed: int = 0) -> BirthGate:
    """A gate that recorded every experience of ``train_stream`` as the plugin would with
    ``seed`` (its ``routing`` holds the shares)."""
    gate = BirthGate()
    for k, experience in enumerate(train_stream, start=1):
        gate.record(sample_inputs(experience.dataset, device="cpu", seed=seed + k), {}, [])
    return gate


def main(argv=None) -> None:
    from sparsegrow.benchmarks import build_benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/routing/routing.json"))
    args = parser.parse_args(argv)
    out = {}
    for label, (name, kwargs) in STREAMS.items():
        stream = build_benchmark(name, **kwargs).train_stream
        gate = routing(stream)
        arms = not is_class_incremental(stream[0])
        out[label] = {"routing": [round(r, 4) for r in gate.routing], "arms": arms}
        print(f"{label}: {' '.join(f'{r:.2f}' for r in gate.routing)} -> automatic gate "
              f"{'armed' if arms else 'off (class-incremental)'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"streams": out}, indent=2) + "\n")
    print(f"written: {args.out}")
