"""Atomic checkpoint files and the global RNG states a resumed run needs."""

from __future__ import annotations

import contextlib
import copy
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


def on_device(obj, device: torch.device):
    """``obj`` with the tensors it holds moved to ``device``: a checkpoint is loaded onto the
    CPU and resumes where the model runs. Follows dicts, lists and tuples, moves modules (LwF's
    previous model) and Avalanche's ``ParamData`` (EWC's importances) in place, and leaves
    other objects (a replay buffer's datasets, whose batches the loader moves) as they are."""
    from avalanche.training.utils import ParamData

    if torch.is_tensor(obj) or isinstance(obj, torch.nn.Module):
        return obj.to(device)
    if isinstance(obj, ParamData):
        obj.device, obj.data = torch.device(device), obj.data.to(device)
        return obj
    if isinstance(obj, dict):
        out = copy.copy(obj)   # keeps a defaultdict's factory
        out.update((k, on_device(v, device)) for k, v in obj.items())
        return out
    if type(obj) in (list, tuple):
        return type(obj)(on_device(v, device) for v in obj)
    return obj


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
