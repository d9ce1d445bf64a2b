"""Frozen masks per parameter tensor, gradient gating and exact restoring of frozen values.

Two kinds of locked entries, both kept at a stored value:

- *frozen* entries: the most important free entries, added at the end of each experience by
  :meth:`ParamLocks.freeze` (masks only grow);
- *pinned* entries: entries that must stay exactly zero, e.g. the weights a sparse
  initialisation of new units left out (:meth:`ParamLocks.pin_zero`).

Gating zeroes the gradient of locked entries; that alone does not keep them fixed (momentum,
weight decay and Adam still move an entry whose gradient is zero), so after every optimizer step
:meth:`ParamLocks.restore_` writes the stored values back. The restore is ``p·free + stored``
with ``free`` ∈ {0, 1}: exact for every finite value, and two in-place ops without allocation,
which keeps the per-step cost negligible.

Tensors are keyed by parameter name. A parameter that grew (new units appended at the end of a
dimension, or new class rows of an incremental head) is detected by its shape and its locks are
padded with free entries (:meth:`ParamLocks.sync`).
"""

from __future__ import annotations

import torch

from sparsegrow.growth.surgery import pad_to


def extend_mask(frozen: torch.Tensor, scores: torch.Tensor, ratio: float,
                exclude: torch.Tensor | None = None) -> torch.Tensor:
    """``frozen`` plus the top ``ratio`` of the free entries by ``scores``.

    Exactly ``round(ratio · n_free)`` entries join; ties are broken by position (a stable sort:
    ``topk``'s tie order differs between CPU and CUDA kernels).

    :param frozen: bool mask of already frozen entries (never shrinks).
    :param scores: importance of each entry, same shape.
    :param ratio: fraction in [0, 1] of the free entries to freeze.
    :param exclude: bool mask of entries that are neither free nor candidates (pinned zeros).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"freeze_ratio must be in [0, 1], got {ratio}")
    taken = frozen if exclude is None else frozen | exclude
    free = ~taken.flatten()
    k = round(ratio * int(free.sum()))
    out = frozen.clone().flatten()
    if k > 0:
        candidates = torch.where(free, scores.flatten().double(),
                                 torch.tensor(float("-inf"), dtype=torch.float64,
                                              device=scores.device))
        out[torch.sort(candidates, descending=True, stable=True).indices[:k]] = True
    return out.view_as(frozen)


def topk_gate_(grad: torch.Tensor, fraction: float) -> None:
    """Keep only the largest-|grad| ``fraction`` of the non-zero entries of ``grad`` (in place).

    Called after locked entries were zeroed, so the fraction is taken over the free entries that
    received a gradient; ties at the threshold are kept. The count of non-zero entries stays on
    the device (no host sync per step): it is at most ``numel``, so the threshold is among the
    top ``round(fraction · numel)`` magnitudes.
    """
    if fraction >= 1.0:
        return
    magnitude = grad.abs().flatten()
    bound = round(fraction * magnitude.numel())
    if bound == 0:   # then round(fraction · n_nonzero) is 0 too
        grad.zero_()
        return
    top = torch.topk(magnitude, bound, sorted=True).values
    k = (fraction * (magnitude > 0).sum().double()).round().long()   # rounds half to even,
    threshold = top[(k - 1).clamp_min(0)]                             # as Python's round
    grad.mul_((grad.abs() >= threshold) & (k > 0))


class ParamLocks:
    """Frozen and pinned entries of named parameters, with gating and exact restoring."""

    def __init__(self):
        self.frozen: dict[str, torch.Tensor] = {}   # bool, importance-frozen entries
        self.pinned: dict[str, torch.Tensor] = {}   # bool, entries kept at zero
        self.values: dict[str, torch.Tensor] = {}   # stored value of locked entries, 0 elsewhere
        self._free: dict[str, tuple] = {}           # cache: rows with locks, 1.0 where free

    # -- bookkeeping -----------------------------------------------------------------------
    def _ensure(self, name: str, p: torch.Tensor) -> None:
        if name not in self.frozen:
            self.frozen[name] = torch.zeros_like(p, dtype=torch.bool)
            self.pinned[name] = torch.zeros_like(p, dtype=torch.bool)
            self.values[name] = torch.zeros_like(p.detach())

    def _refresh(self, name: str) -> None:
        locked = self.frozen[name] | self.pinned[name]
        rows = torch.nonzero(locked.flatten(1).any(1) if locked.dim() > 1 else locked).flatten()
        if rows.numel():
            # per-step work only on the rows that hold locked entries (sparse-init pins live in
            # the few new rows of a grown layer): (first row, end row, free mask of those rows)
            first, end = int(rows[0]), int(rows[-1]) + 1
            self._free[name] = (first, end, (~locked[first:end]).to(self.values[name].dtype),
                                self.values[name][first:end])
        else:
            self._free.pop(name, None)

    def sync(self, params: dict[str, torch.Tensor]) -> list[str]:
        """Pad the locks of parameters that grew since they were locked (new entries free).

        :return: names of the parameters whose locks were padded.
        """
        grown = []
        for name, p in params.items():
            if name in self.frozen and self.frozen[name].shape != p.shape:
                if any(a > b for a, b in zip(self.frozen[name].shape, p.shape)) or \
                        self.frozen[name].dim() != p.dim():
                    raise ValueError(f"parameter '{name}' shrank or changed rank from "
                                     f"{tuple(self.frozen[name].shape)} to {tuple(p.shape)}; "
                                     "its frozen mask cannot follow")
                self.frozen[name] = pad_to(self.frozen[name], p.shape, False)
                self.pinned[name] = pad_to(self.pinned[name], p.shape, False)
                self.values[name] = pad_to(self.values[name], p.shape, 0)
                self._refresh(name)
                grown.append(name)
        return grown

    def freeze(self, params: dict[str, torch.Tensor], scores: dict[str, torch.Tensor],
               ratio: float) -> None:
        """Add the top ``ratio`` of each parameter's free entries (by ``scores``) to its mask
        and store their current values."""
        for name, score in scores.items():
            p = params[name]
            self._ensure(name, p)
            new = extend_mask(self.frozen[name], score.to(p.device), ratio,
                              exclude=self.pinned[name])
            added = new & ~self.frozen[name]
            self.values[name] = torch.where(added, p.detach(), self.values[name])
            self.frozen[name] = new
            self._refresh(name)

    def pin_zero(self, name: str, p: torch.Tensor, zero: torch.Tensor) -> None:
        """Keep the entries where ``zero`` is True at exactly 0 from now on."""
        self._ensure(name, p)
        self.sync({name: p})
        self.pinned[name] = self.pinned[name] | zero.to(p.device)
        self.values[name] = torch.where(zero.to(p.device), torch.zeros_like(self.values[name]),
                                        self.values[name])
        self._refresh(name)

    def lock(self, name: str, p: torch.Tensor, entries: torch.Tensor) -> None:
        """Keep the entries where ``entries`` is True at their current values from now on
        (entries already locked keep the value they were locked at)."""
        self._ensure(name, p)
        self.sync({name: p})
        added = entries.to(p.device) & ~self.frozen[name] & ~self.pinned[name]
        self.values[name] = torch.where(added, p.detach(), self.values[name])
        self.frozen[name] = self.frozen[name] | added
        self._refresh(name)

    # -- per step --------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether any entry is locked (gating and restoring are no-ops otherwise)."""
        return bool(self._free)

    def gate_(self, params: dict[str, torch.Tensor], topk: float = 1.0) -> None:
        """Zero the gradients of locked entries; optionally keep only the top-|grad| ``topk``
        fraction of the free entries."""
        grads, frees = [], []
        for name, (first, end, free, _) in self._free.items():
            p = params.get(name)
            if p is not None and p.grad is not None:
                grads.append(p.grad[first:end])
                frees.append(free)
        if grads:   # one kernel launch for all parameters, not one each
            torch._foreach_mul_(grads, frees)
        if topk < 1.0:
            for p in params.values():
                if p.grad is not None:
                    topk_gate_(p.grad, topk)

    @torch.no_grad()
    def restore_(self, params: dict[str, torch.Tensor]) -> None:
        """Write the stored values back into every locked entry (bit-exact)."""
        rows, frees, stored = [], [], []
        for name, (first, end, free, values) in self._free.items():
            p = params.get(name)
            if p is not None:
                rows.append(p[first:end])
                frees.append(free)
                stored.append(values)
        if rows:
            torch._foreach_mul_(rows, frees)
            torch._foreach_add_(rows, stored)

    # -- reporting and checkpoints ---------------------------------------------------------
    def frozen_fraction(self) -> dict[str, float]:
        """Fraction of frozen entries per parameter name."""
        return {n: float(m.float().mean()) for n, m in self.frozen.items()}

    def to(self, device) -> None:
        """Move every mask and stored value to ``device`` (the model's, e.g. after a CPU-mapped
        load); nothing to do when they are there already."""
        device = torch.device(device)
        if all(v.device == device for v in self.values.values()):
            return
        for table in (self.frozen, self.pinned, self.values):
            table.update({k: v.to(device) for k, v in table.items()})
        self._free = {name: (first, end, free.to(device), self.values[name][first:end])
                      for name, (first, end, free, _) in self._free.items()}

    def state_dict(self) -> dict:
        return {"frozen": dict(self.frozen), "pinned": dict(self.pinned),
                "values": dict(self.values)}

    def load_state_dict(self, state: dict, device=None) -> None:
        def move(d):
            return {k: v.to(device) if device is not None else v.clone() for k, v in d.items()}
        self.frozen, self.pinned, self.values = (move(state["frozen"]), move(state["pinned"]),
                                                 move(state["values"]))
        self._free = {}
        for name in self.frozen:
            self._refresh(name)
