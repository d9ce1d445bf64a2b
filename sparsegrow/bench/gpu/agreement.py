"""CPU-vs-device agreement (TF32 off) of a growth event, an on-data initialisation and one
protected training step, within stated tolerances."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Tolerance:
    """``|other − reference| ≤ atol + rtol·|reference|`` entrywise."""

    rtol: float
    atol: float


# Chosen before any GPU ran this code (the first run's max_abs_diff will tell how much room
# they leave). A growth event draws its random rows on the CPU generator on both devices: only
# float32 rounding of the copies and of the outgoing weights' scale differs. An on-data init goes
# through cross-covariance sums and an eigendecomposition, whose directions move by about
# ε·‖M‖/gap. One protected step runs conv/matmul kernels that sum in another order, then a
# projection that removes most of the update.
TOLERANCES = {"growth": Tolerance(rtol=1e-5, atol=1e-6),
              "on_data": Tolerance(rtol=1e-3, atol=1e-4),
              "protected_step": Tolerance(rtol=1e-4, atol=1e-5)}
# A protected layer's response to its old inputs (M·B) may move by this much in one step.
OLD_INPUT_ATOL = 1e-4
# How far an on-data init may move is a property of the problem: its directions move by about
# ε·‖M‖/gap, and this small problem's M has close singular values (the first GPU run differed
# from the CPU by 1.1e-3, as the CPU does from itself on inputs jittered at float32 rounding).
# So the CPU's own spread under a jitter of one float32 ulp (relative 2⁻²³) is measured, and the
# device may differ by up to SPREAD_FACTOR times it; a device bug moves weights by O(0.1).
JITTER = 2.0 ** -23
SPREAD_FACTOR = 10.0


def compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor],
            tol: Tolerance) -> dict:
    """Compare two ``{name: tensor}`` results entrywise within ``tol`` (``reference`` is the
    CPU's). ``ok`` is False when a name is missing on one side, shapes differ, or any entry is
    off by more than ``atol + rtol·|reference|`` (NaN counts as off)."""
    problems = []
    worst, max_diff = None, 0.0
    for name in sorted(reference.keys() | other.keys()):
        if name not in reference or name not in other:
            problems.append(f"{name}: only in the {'reference' if name in reference else 'other'}")
            continue
        a = reference[name].detach().cpu().double()
        b = other[name].detach().cpu().double()
        if a.shape != b.shape:
            problems.append(f"{name}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            continue
        diff = (b - a).abs()
        d = float(diff.max()) if diff.numel() else 0.0
        if math.isnan(d):
            d = math.inf
        if d > max_diff or worst is None:
            worst, max_diff = name, d
        if not bool((diff <= tol.atol + tol.rtol * a.abs()).all()):
            problems.append(f"{name}: max |diff| {d:.3g}")
    return {"ok": not problems, "max_abs_diff": max_diff, "worst": worst, **asdict(tol),
            "problems": problems[:10]}


@contextmanager
def tf32(enabled: bool):
    """TF32 in CUDA matmuls and cuDNN convs on or off (full float32), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


SHAPE, CLASSES, BATCH, UNITS = (1, 12, 12), 4, 32, 3


def _small_cnn(device: torch.device) -> nn.Module:
    from sparsegrow.models import SmallCNN

    torch.manual_seed(0)    # built on the CPU: the same weights on every device
    return SmallCNN(input_shape=SHAPE, n_classes=CLASSES, width=6, hidden=24).to(device)


def _batches(device: torch.device, n: int,
             jitter: float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` seeded batches drawn on the CPU; inputs scaled by 1 + ``jitter``·N(0, 1)."""
    g = torch.Generator().manual_seed(1)
    batches = [(torch.rand(BATCH, *SHAPE, generator=g), torch.randint(0, CLASSES, (BATCH,),
                                                                      generator=g))
               for _ in range(n)]
    noise = torch.Generator().manual_seed(3)
    return [((x * (1 + jitter * torch.randn(x.shape, generator=noise))).to(device), y.to(device))
            for x, y in batches]


def _snapshot(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        out = {"output": model(x).cpu()}
    return {**out, **{k: v.detach().cpu() for k, v in model.state_dict().items()}}


def growth_event(device: torch.device) -> dict[str, torch.Tensor]:
    """Every expandable pair of a small CNN (BatchNorm, conv→flatten→linear) widened by
    :data:`UNITS` with random init from a seeded CPU generator."""
    from sparsegrow.growth import Grower

    model = _small_cnn(device)
    x = _batches(device, 1)[0][0]
    grower = Grower(model, example=x)
    generator = torch.Generator().manual_seed(2)
    for pair in grower.pairs:
        grower.widen(pair.producer, UNITS, init="random", generator=generator)
    return _snapshot(model, x)


def on_data_init(device: torch.device, jitter: float = 0.0) -> dict[str, torch.Tensor]:
    """Every pair widened in one growth event with on-data init from the same two batches
    (their inputs jittered by ``jitter``, see :data:`JITTER`)."""
    from sparsegrow.growth import Grower

    model = _small_cnn(device)
    batches = _batches(device, 2, jitter)
    grower = Grower(model, example=batches[0][0])
    grower.widen_many({p.producer: UNITS for p in grower.pairs}, init="on_data",
                      batches=batches, loss_fn=F.cross_entropy,
                      generator=torch.Generator().manual_seed(2))
    return _snapshot(model, batches[0][0])


def _host_syncs(fn, device: torch.device) -> int | None:
    """How many synchronising CUDA calls ``fn`` makes (None off CUDA)."""
    if device.type != "cuda":
        fn()
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


@torch.no_grad()
def _old_input_change(before: dict[str, torch.Tensor], model: nn.Module, bases) -> float:
    """max |ΔM·B| over the protected (ungrouped) layers: how much a layer's response to its
    old inputs moved, M = [W | b] as the subspace memory sees it."""
    worst = 0.0
    for name, basis in bases.items():
        module = model.get_submodule(name)
        if basis.dim() != 2:
            continue
        delta = (module.weight - before[f"{name}.weight"]).flatten(1)
        if module.bias is not None:
            delta = torch.cat([delta, (module.bias - before[f"{name}.bias"])[:, None]], 1)
        worst = max(worst, float((delta @ basis.to(delta.dtype)).abs().max()))
    return worst


def protected_step(device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """One SGD step with momentum on new data after subspace bases were taken on old data, then
    the projection (SparseGrowPlugin's default protection): weights, momentum, projectors B·Bᵀ
    (sign-free) and basis sizes; plus the step's host syncs and old-input change."""
    from sparsegrow.protection.subspace import SubspaceMemory

    model = _small_cnn(device)
    *old, new = _batches(device, 3)
    memory = SubspaceMemory(energy=0.9)
    memory.update(model, [x for x, _ in old])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    F.cross_entropy(model(new[0]), new[1]).backward()
    optimizer.step()
    syncs = _host_syncs(lambda: memory.project_(model, optimizer), device)
    result = {f"param/{k}": v.detach().cpu() for k, v in model.named_parameters()}
    result.update({f"momentum/{k}": optimizer.state[p]["momentum_buffer"].cpu()
                   for k, p in model.named_parameters()})
    result.update({f"projector/{k}": (b @ b.T).cpu() for k, b in memory.bases.items()
                   if b.dim() == 2})
    result.update({f"basis_size/{k}": torch.tensor(float(v)) for k, v in memory.sizes().items()})
    facts = {"host_syncs_in_projection": syncs,
             "old_input_change": _old_input_change(before, model, memory.bases)}
    return result, facts


def _protected_step_tf32(device: torch.device) -> float:
    """The protected step's old-input change with TF32 allowed (a user's default on CUDA)."""
    with tf32(True):
        return protected_step(device)[1]["old_input_change"]


def agreement(device: torch.device) -> dict:
    """The three CPU-vs-``device`` comparisons (TF32 off)."""
    cpu = torch.device("cpu")
    with tf32(False):
        growth = growth_event(cpu), growth_event(device)
        on_data = on_data_init(cpu), on_data_init(device)
        (reference, facts_cpu), (other, facts) = protected_step(cpu), protected_step(device)
        spread = compare(on_data[0], on_data_init(cpu, JITTER),
                         TOLERANCES["on_data"])["max_abs_diff"]
    on_data_tol = replace(TOLERANCES["on_data"],
                          atol=max(TOLERANCES["on_data"].atol, SPREAD_FACTOR * spread))
    out = {"growth": compare(*growth, TOLERANCES["growth"]),
           "on_data": {**compare(*on_data, on_data_tol), "cpu_spread_at_jitter": spread}}
    step = compare(reference, other, TOLERANCES["protected_step"])
    step.update({"old_input_atol": OLD_INPUT_ATOL,
                 "old_input_change_cpu": facts_cpu["old_input_change"],
                 "old_input_change_device": facts["old_input_change"],
                 "host_syncs_in_projection": facts["host_syncs_in_projection"],
                 "old_input_change_device_tf32_on": (_protected_step_tf32(device)
                                                     if device.type == "cuda" else None)})
    # TF32 (a CUDA user's default) must not loosen the projection either
    changes = [step[k] for k in ("old_input_change_cpu", "old_input_change_device",
                                 "old_input_change_device_tf32_on") if step[k] is not None]
    step["ok"] = step["ok"] and max(changes) <= OLD_INPUT_ATOL
    out["protected_step"] = step
    out["ok"] = all(out[k]["ok"] for k in ("growth", "on_data", "protected_step"))
    return out
