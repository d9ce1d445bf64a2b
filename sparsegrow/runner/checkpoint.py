"""Atomic checkpoint files and the global RNG states a resumed run needs."""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from sparsegrow.runner.shared_arrays import SharedArrays


def atomic_write_bytes(path: Path, write) -> None:
    """Write through ``write(file_path)`` to a temp file, then rename over ``path``: a run
    killed mid-write leaves the previous file intact. The temp name is the process's own:
    several processes running strategies of one experiment write its summary and plots."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text))


def save(path: Path, state: dict, shared: SharedArrays | None = None) -> None:
    """``shared``: the benchmark's large arrays, written as references (see
    :mod:`.shared_arrays`)."""
    kwargs = {"pickle_module": shared.pickle_module()} if shared else {}
    atomic_write_bytes(path, lambda tmp: torch.save(state, tmp, **kwargs))


def load(path: Path, shared: SharedArrays | None = None) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    with shared.resolving() if shared else contextlib.nullcontext():
        # our own file, holding plugin objects' state (not only tensors)
        return torch.load(path, weights_only=False, map_location="cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
