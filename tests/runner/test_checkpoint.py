from pathlib import Path

import numpy as np
import pytest
import torch

from sparsegrow.errors import ConfigError
from sparsegrow.runner import checkpoint
from sparsegrow.runner.shared_arrays import SharedArrays


def test_atomic_writes_of_two_processes_interleave(tmp_path, monkeypatch):
    """Two `sparsegrow run` processes of one experiment write its summary files at the same
    time: one's rename must not take away the other's temp file."""
    target = tmp_path / "summary.md"

    def write_a(tmp):
        Path(tmp).write_text("A")
        monkeypatch.setattr(checkpoint.os, "getpid", lambda: 2)     # process B, meanwhile
        checkpoint.atomic_write_text(target, "B")

    monkeypatch.setattr(checkpoint.os, "getpid", lambda: 1)
    checkpoint.atomic_write_bytes(target, write_a)
    assert target.read_text() == "A"          # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    checkpoint.save(target, {"rows": [[0.5]]})

    def broken(tmp):
        Path(tmp).write_bytes(b"half a file")
        raise KeyboardInterrupt               # killed mid-write

    try:
        checkpoint.atomic_write_bytes(target, broken)
    except KeyboardInterrupt:
        pass
    assert checkpoint.load(target) == {"rows": [[0.5]]}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]   # no temp file left


class Images:
    """A dataset as benchmarks hold them: one large tensor, and subsets indexing into it."""

    def __init__(self, seed):
        self.x = torch.rand(4096, 64, generator=torch.Generator().manual_seed(seed))  # 1 MiB
        # 128 KiB: copied, not shared, and large enough for pickle to hand its memory to the
        # writer as a PickleBuffer
        self.labels = np.arange(16384) % 10


class Subset:
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices


def test_checkpoint_refers_to_the_benchmark_data_instead_of_copying_it(tmp_path):
    bench = [Images(0)]
    shared = SharedArrays(bench)
    assert len(shared) == 1                            # the tensor; the labels are small
    buffer = Subset(bench[0], [3, 5])                  # e.g. a replay buffer
    checkpoint.save(tmp_path / "shared.pt", {"buffer": buffer}, shared)
    checkpoint.save(tmp_path / "copied.pt", {"buffer": buffer})
    assert (tmp_path / "shared.pt").stat().st_size < 200_000   # the labels' 128 KiB, no tensor
    assert (tmp_path / "copied.pt").stat().st_size > 4096 * 64 * 4

    rebuilt = [Images(0)]                              # the resumed run rebuilds its benchmark
    state = checkpoint.load(tmp_path / "shared.pt", SharedArrays(rebuilt))
    assert state["buffer"].dataset.x is rebuilt[0].x   # the live tensor, not a copy
    assert state["buffer"].indices == [3, 5]
    assert np.array_equal(state["buffer"].dataset.labels, rebuilt[0].labels)


def test_checkpoint_of_another_benchmark_fails_with_a_message(tmp_path):
    bench = [Images(0)]
    checkpoint.save(tmp_path / "c.pt", {"buffer": Subset(bench[0], [1])}, SharedArrays(bench))
    smaller = Images(0)
    smaller.x = smaller.x[:, :32].clone()
    with pytest.raises(ConfigError, match=r"shape \(4096, 64\).*does not have"):
        checkpoint.load(tmp_path / "c.pt", SharedArrays([smaller, Images(1)]))
