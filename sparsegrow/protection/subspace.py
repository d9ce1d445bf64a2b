"""Subspace protection in the spirit of Gradient Projection Memory (Saha et al., 2021).

For every ``Linear``/``Conv2d`` layer we keep an orthonormal basis B of the inputs it saw in
earlier experiences (for a conv, its unfolded input patches), from an SVD of a sample at the end
of each experience, keeping ``energy`` of the sample's squared norm. A layer with a bias is
treated as acting on ``[input, 1]``, so its weight and bias form one matrix M = [W | b] and B
lives in that augmented space: old inputs then see exactly M·B.

Protection keeps M·B equal to its value when the basis was last updated (the *anchor* A), by
removing the component of any change that lies in span(B):

    M ← M − (M·B − A)·Bᵀ

and by projecting the linear optimizer state (SGD momentum, Adam's first moment) onto the
complement of span(B). Done after every optimizer step this is exactly GPM's projected-gradient
SGD (with momentum), and it holds under weight decay and Adam too; done every ``every`` steps
it costs 1/``every`` of that, and old inputs still see exactly the anchored layer at the end of
the experience (and at growth events, which project first).

A grouped Conv2d (e.g. depthwise, groups = channels) is G independent layers: group g's
output channels see only group g's input channels. It gets one basis per group (input patches of
its channels, plus the bias coordinate), stored as a [G, d, k] tensor whose groups with fewer
directions are padded with zero columns (a zero column protects nothing), and the projection
acts on the G blocks [W_g | b_g] at once. Any padding mode is handled (the input is padded as the
layer pads it before patches are taken), so every Linear/Conv2d that runs in the forward can be
protected; a layer that never runs its own forward (e.g. ``MultiheadAttention.out_proj``, whose
weight the attention uses directly) gets no basis, and :meth:`SubspaceMemory.covered` says which
parameters are protected.

The same bases give the orthogonal-complement initialisation of new units
(:meth:`SubspaceMemory.input_basis`).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsegrow.errors import SparseGrowError
from sparsegrow.linalg import full_precision, thin_svd
from sparsegrow.measuring import measuring

LINEAR_STATE = ("momentum_buffer", "exp_avg")  # optimizer state that is linear in the gradients


@full_precision()
def update_basis(basis: torch.Tensor | None, acts: torch.Tensor, energy: float) -> torch.Tensor:
    """GPM basis update: add the fewest directions so that span(basis) holds ``energy`` of
    the squared norm of ``acts``.

    :param basis: [d, k] orthonormal columns, or None.
    :param acts: [N, d] sample of inputs (rows).
    :param energy: fraction in [0, 1].
    :return: [d, k'] orthonormal columns, k' ≥ k, the old ones first and unchanged; float32
        (float64 for float64 inputs) whatever precision ``acts`` came in.
    """
    if not 0.0 <= energy <= 1.0:
        raise ValueError(f"subspace energy must be in [0, 1], got {energy}")
    # float32 SVD: half the time of float64, ample for an energy threshold
    dtype = torch.promote_types(acts.dtype, torch.float32)
    a = acts.T.to(dtype)
    d = a.shape[0]
    old = torch.zeros(d, 0, dtype=dtype, device=a.device) if basis is None else basis.to(dtype)
    total = float((a * a).sum())
    if total == 0.0 or old.shape[1] >= d:
        return old
    residual = a - old @ (old.T @ a)
    covered = total - float((residual * residual).sum())
    need = energy * total - covered
    if need <= 0:
        return old

    def directions(s: torch.Tensor) -> int:   # the fewest that reach ``need``
        reached = torch.cumsum(s * s, 0) >= need * (1 - 1e-9)
        k = int(torch.nonzero(reached)[0]) + 1 if reached.any() else int((s > 0).sum())
        return min(k, d - old.shape[1])

    new, _, _ = thin_svd(residual, rank=directions)
    new = new - old @ (old.T @ new)          # re-orthogonalise against rounding
    new = torch.linalg.qr(new).Q
    return torch.cat([old, new], 1)


@torch.no_grad()
def eval_passes(model: nn.Module, inputs, hooks) -> None:
    """Run ``model`` directly (not a strategy's evaluation) in measuring mode
    (:mod:`sparsegrow.measuring`) on each of ``inputs`` for what ``hooks`` record, then restore
    its modes and remove the hooks."""
    try:
        with measuring(model):
            for x in inputs:
                model(x)
    finally:
        for h in hooks:
            h.remove()


def check_energy(energy):
    """``energy`` if it is a fraction in [0, 1] or a {layer: fraction} dict, else a ValueError."""
    values = energy.values() if isinstance(energy, dict) else [energy]
    for value in values:
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"subspace energy must be a fraction in [0, 1] or a "
                             f"{{layer: fraction}} mapping, got {energy!r}")
    return dict(energy) if isinstance(energy, dict) else float(energy)


def update_group_bases(bases: torch.Tensor | None, acts: torch.Tensor,
                       energy: float) -> torch.Tensor:
    """:func:`update_basis` for each group of a grouped layer.

    :param bases: [G, d, k] (zero columns pad groups with fewer directions), or None.
    :param acts: [G, N, d] inputs of each group.
    :return: [G, d, k'] with each group's old directions first and unchanged.
    """
    groups = []
    for g in range(acts.shape[0]):
        old = None
        if bases is not None:
            old = bases[g][:, bases[g].norm(dim=0) > 0]
        groups.append(update_basis(old, acts[g], energy))
    width = max(b.shape[1] for b in groups)
    return torch.stack([F.pad(b, (0, width - b.shape[1])) for b in groups])


def _groups(module: nn.Module) -> int:
    return module.groups if isinstance(module, nn.Conv2d) else 1


def _padded(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """``x`` padded as the conv pads it, and the conv's output height and width."""
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    x = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    return x, (x.shape[2] - dh * (kh - 1) - 1) // sh + 1, (x.shape[3] - dw * (kw - 1) - 1) // sw + 1


def row_count(module: nn.Module, x: torch.Tensor) -> int:
    """Number of rows :func:`layer_rows` makes of input ``x`` (a conv: one per output position)."""
    if isinstance(module, nn.Conv2d):
        _, oh, ow = _padded(module, x[:1, :1])
        return x.shape[0] * oh * ow
    return x.numel() // x.shape[-1]


def _patches(conv: nn.Conv2d, padded: torch.Tensor, oh: int, ow: int,
             index: torch.Tensor) -> torch.Tensor:
    """The unfolded patches of rows ``index`` (row = sample · oh·ow + position), read directly
    from the padded input: the same values as ``F.unfold`` without unfolding every position."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    n, position = index // (oh * ow), index % (oh * ow)
    device = padded.device
    ys = (position // ow * sh)[:, None] + torch.arange(kh, device=device) * dh
    xs = (position % ow * sw)[:, None] + torch.arange(kw, device=device) * dw
    channels = torch.arange(padded.shape[1], device=device)
    patches = padded[n[:, None, None, None], channels[None, :, None, None],
                     ys[:, None, :, None], xs[:, None, None, :]]
    return patches.reshape(len(index), -1)


def layer_rows(module: nn.Module, x: torch.Tensor,
               index: torch.Tensor | None = None) -> torch.Tensor:
    """The layer's input as rows of each group's augmented input space ([input, 1] if it has a
    bias): [G, N, d], G = 1 except for grouped convolutions; only rows ``index`` if given."""
    groups = _groups(module)
    if isinstance(module, nn.Conv2d):
        x, oh, ow = _padded(module, x)
        if index is None:
            rows = F.unfold(x, module.kernel_size, module.dilation, 0, module.stride)
            rows = rows.transpose(1, 2).reshape(-1, rows.shape[1])
        else:
            rows = _patches(module, x, oh, ow, index)
        # patches are channel-major (C, kh, kw), so group g's columns are one contiguous block
        rows = rows.reshape(rows.shape[0], groups, -1).transpose(0, 1)
    else:
        rows = x.reshape(-1, x.shape[-1])
        rows = (rows if index is None else rows[index]).unsqueeze(0)
    if module.bias is not None:
        rows = torch.cat([rows, torch.ones(*rows.shape[:2], 1, dtype=rows.dtype,
                                           device=rows.device)], 2)
    return rows


def settled_rows(rows: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor | None] | None:
    """``rows`` for :meth:`SubspaceMemory.project_` with the host's decisions taken: layers
    with no row marked left out, a layer with every row marked ``None``. Reads each mask on the
    host once: call it when the rows change (an experience, a growth event), not every step."""
    if rows is None:
        return None
    out = {}
    for name, keep in rows.items():
        if bool(keep.any()):
            out[name] = None if bool(keep.all()) else keep
    return out


def _stacked(t: torch.Tensor) -> torch.Tensor:
    """Bases and anchors of ungrouped layers are stored as matrices; the math works on stacks."""
    return t if t.dim() == 3 else t.unsqueeze(0)


def _times_basis(tensors: tuple[torch.Tensor, torch.Tensor | None], groups: int,
                 basis: torch.Tensor) -> torch.Tensor:
    """[W_g | b_g]·B_g per group, [G, rows per group, k], without forming [W | b]: a wide
    layer's weight (VGG's 25088 inputs) is read once instead of copied next to its bias.
    Computed in the basis' precision (a half-precision weight is read as float32)."""
    weight, bias = (None if t is None else t.to(basis.dtype) for t in tensors)
    cols = weight[0].numel()
    out = weight.reshape(groups, weight.shape[0] // groups, cols) @ basis[:, :cols]
    if bias is not None:
        out = out + bias.reshape(groups, -1, 1) * basis[:, cols:]
    return out


def _subtract_(tensors, groups: int, residual: torch.Tensor, basis: torch.Tensor,
               keep: torch.Tensor | None) -> None:
    """[W_g | b_g] −= R_g·B_gᵀ in place, on the output rows marked in ``keep`` only (a row with
    a zero R row is left bit-identical: it gets exact zeros subtracted)."""
    if keep is not None:
        residual = residual * keep.to(device=residual.device, dtype=residual.dtype).reshape(
            groups, -1, 1)
    weight, bias = tensors
    cols = weight[0].numel()
    weight.sub_((residual @ basis[:, :cols].transpose(1, 2)).reshape(weight.shape))
    if bias is not None:
        bias.sub_((residual @ basis[:, cols:].transpose(1, 2)).reshape(bias.shape))


def _response(module: nn.Module, basis: torch.Tensor) -> torch.Tensor:
    """M·B per group, stored in the basis' own layout (a matrix for ungrouped layers)."""
    response = _times_basis((module.weight, module.bias), _groups(module), _stacked(basis))
    return response if basis.dim() == 3 else response[0]


def _sampled_rows(module: nn.Module, chunks, counts, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of the concatenated rows of all ``chunks``, in the order of ``idx``."""
    out, start = None, 0
    for x, count in zip(chunks, counts):
        where = torch.nonzero((idx >= start) & (idx < start + count)).flatten()
        if where.numel():
            rows = layer_rows(module, x, (idx[where] - start).to(x.device))
            if out is None:
                out = rows.new_empty(rows.shape[0], len(idx), rows.shape[2])
            out[:, where.to(rows.device)] = rows
        start += count
    return out


class SubspaceMemory:
    """Per-layer input bases, their anchors, and the projection that protects them.

    Layers are keyed by module name; a layer whose input or output grew is followed by
    :meth:`sync` (new input dimensions get zero basis rows, because the old inputs were zero
    there; the anchor is recomputed, which keeps the old rows' anchor since they satisfied it).
    """

    def __init__(self, *, energy: float | dict[str, float] = 0.9, max_rows: int = 4096):
        """:param energy: fraction of each layer's input energy its basis keeps; a float for all
            layers, or {layer name: fraction} with an optional ``"default"`` for the others.
        :param max_rows: input rows sampled per layer and experience (conv patches)."""
        self.energy = check_energy(energy)
        self.max_rows = max_rows
        self.bases: dict[str, torch.Tensor] = {}
        self.anchors: dict[str, torch.Tensor] = {}
        self._dims: dict[str, int] = {}  # weight columns per row when the basis was last aligned

    @staticmethod
    def layers(model: nn.Module) -> dict[str, nn.Module]:
        """The layers this memory protects: every Linear/Conv2d with a trainable weight."""
        return {n: m for n, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.requires_grad}

    @full_precision()
    @torch.no_grad()
    def update(self, model: nn.Module, inputs: Iterable[torch.Tensor]) -> None:
        """Extend every layer's basis with a sample of its inputs on ``inputs`` and re-anchor.

        :param model: the model (run in eval mode, restored afterwards).
        :param inputs: batches of model inputs from the experience just learned.
        """
        layers = self.layers(model)
        self._check_energy_keys(list(layers))
        # inputs, not rows: a conv's rows (every patch) are unfolded only for the sample kept
        seen: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
        hooks = [m.register_forward_pre_hook(
            lambda mod, args, n=n: seen[n].append(args[0].detach()))
            for n, m in layers.items()]
        eval_passes(model, inputs, hooks)
        self.sync(model)
        generator = torch.Generator().manual_seed(len(self.bases))
        for name, chunks in seen.items():
            if not chunks:
                continue
            module = layers[name]
            counts = [row_count(module, x) for x in chunks]
            if sum(counts) > self.max_rows:
                # convs: subsample patches (fixed seed, no global RNG)
                idx = torch.randperm(sum(counts), generator=generator)[: self.max_rows]
                acts = _sampled_rows(module, chunks, counts, idx)
            else:
                acts = torch.cat([layer_rows(module, x) for x in chunks], 1)
            if acts.shape[0] == 1:
                self.bases[name] = update_basis(self.bases.get(name), acts[0],
                                                self.energy_of(name))
            else:
                self.bases[name] = update_group_bases(self.bases.get(name), acts,
                                                      self.energy_of(name))
            self._dims[name] = layers[name].weight[0].numel()
        self.anchor(model)

    def energy_of(self, name: str) -> float:
        """The energy threshold of layer ``name``: its own entry, else that of the closest
        enclosing module (``head`` covers ``head.classifier``), else ``default``."""
        if not isinstance(self.energy, dict):
            return self.energy
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            key = ".".join(parts[:end])
            if key in self.energy:
                return self.energy[key]
        return self.energy.get("default", 0.9)

    def _check_energy_keys(self, names) -> None:
        if not isinstance(self.energy, dict):
            return
        for key in self.energy:
            if key != "default" and not any(n == key or n.startswith(key + ".") for n in names):
                raise SparseGrowError(f"subspace energy names layer '{key}', which is not a "
                                      f"protected layer of the model (those are: "
                                      f"{', '.join(names)})")

    @full_precision()
    @torch.no_grad()
    def anchor(self, model: nn.Module) -> None:
        """Set every anchor to the layer's current response M·B."""
        layers = self.layers(model)
        for name, basis in self.bases.items():
            if name in layers:   # a frozen layer keeps its anchor: nothing changed its weights
                self.anchors[name] = _response(layers[name], basis)

    @full_precision()
    @torch.no_grad()
    def anchor_rows(self, model: nn.Module, name: str, start: int) -> None:
        """Set the anchor of layer ``name``'s output rows from ``start`` on to their current
        response (an ungrouped layer; nothing if it has no basis)."""
        if name in self.bases and self.bases[name].dim() == 2:
            module = self.layers(model)[name]
            self.anchors[name][start:] = _response(module, self.bases[name])[start:]

    @full_precision()
    def sync(self, model: nn.Module) -> list[str]:
        """Follow layers that grew: pad input bases with zero rows, recompute anchors.

        :return: names of the layers that changed.
        """
        layers = self.layers(model)
        changed = []
        for name, basis in list(self.bases.items()):
            m = layers.get(name)
            if m is None and name in dict(model.named_modules()):
                continue   # frozen (requires_grad False): its basis waits until it trains again
            if m is None:
                raise SparseGrowError(f"subspace gating lost layer '{name}': the model no longer "
                                      "has a module of that name")
            cols, old = m.weight[0].numel(), self._dims[name]
            if cols != old:
                pad = torch.zeros(*basis.shape[:-2], cols - old, basis.shape[-1],
                                  dtype=basis.dtype, device=basis.device)
                basis = torch.cat([basis[..., :old, :], pad, basis[..., old:, :]], -2)
                self._dims[name] = cols
            if basis.dim() == 3 and basis.shape[0] != _groups(m):
                # a depthwise conv widened with its producer: new groups, no old inputs yet
                basis = F.pad(basis, (0, 0, 0, 0, 0, _groups(m) - basis.shape[0]))
            self.bases[name] = basis
            rows = (_groups(m), m.weight.shape[0] // _groups(m))
            if cols != old or tuple(_stacked(self.anchors[name]).shape[:2]) != tuple(rows):
                changed.append(name)
        for name in changed:
            with torch.no_grad():
                self.anchors[name] = _response(layers[name], self.bases[name])
        return changed

    @full_precision()
    @torch.no_grad()
    def project_(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 rows: dict[str, torch.Tensor | None] | None = None) -> None:
        """Restore M·B = anchor in every protected layer and project the optimizer's linear
        state (momentum, Adam's first moment) onto the complement of the bases.

        Never reads a tensor's value on the host (it runs every ``project_every`` steps):
        which layers and rows to skip is decided by ``rows``, once (:func:`settled_rows`).

        :param rows: restrict the protection to the layers named here and, in each, to the
            output rows marked True (a bool vector; ``None``: every row); ``None`` protects
            every row of every layer.
        """
        layers = self.layers(model)
        for name, basis in self.bases.items():
            if rows is not None and name not in rows:
                continue
            keep = None if rows is None else rows[name]
            m = layers.get(name)
            if m is None:   # frozen: nothing to restore
                continue
            groups = _groups(m)
            basis = _stacked(basis)
            tensors = (m.weight, m.bias)
            residual = _times_basis(tensors, groups, basis) - _stacked(self.anchors[name])
            _subtract_(tensors, groups, residual, basis, keep)
            if optimizer is None:
                continue
            for key in LINEAR_STATE:
                states = [optimizer.state.get(p, {}).get(key) for p in (m.weight, m.bias)]
                if states[0] is None or (m.bias is not None and states[1] is None):
                    continue
                state = (states[0], states[1] if m.bias is not None else None)
                _subtract_(state, groups, _times_basis(state, groups, basis), basis, keep)

    def input_basis(self, name: str) -> torch.Tensor | None:
        """Orthonormal basis of the old inputs of layer ``name`` in its weight's input space
        (the bias coordinate dropped), for initialising new units in its complement; None for
        a grouped layer (growth never widens one as a producer)."""
        basis = self.bases.get(name)
        if basis is None or basis.dim() == 3 or basis.shape[1] == 0:
            return None
        return thin_svd(basis[: self._dims[name]])[0]

    def sizes(self) -> dict[str, int]:
        """Basis size (number of protected directions, summed over groups) per layer."""
        return {n: int((_stacked(b).norm(dim=1) > 0).sum()) if b.dim() == 3 else int(b.shape[1])
                for n, b in self.bases.items()}

    def covered(self) -> set[str]:
        """Names of the parameters this memory protects (weights and biases of layers with a
        basis)."""
        return {f"{n}.{attr}" for n in self.bases for attr in ("weight", "bias")}

    def to(self, device) -> None:
        """Move bases and anchors to ``device`` (the model's, e.g. after a CPU-mapped load)."""
        self.bases = {k: v.to(device) for k, v in self.bases.items()}
        self.anchors = {k: v.to(device) for k, v in self.anchors.items()}

    def state_dict(self) -> dict:
        return {"energy": self.energy, "bases": dict(self.bases), "anchors": dict(self.anchors),
                "dims": dict(self._dims)}

    def load_state_dict(self, state: dict) -> None:
        self.energy = state["energy"]
        self.bases = {k: v.clone() for k, v in state["bases"].items()}
        self.anchors = {k: v.clone() for k, v in state["anchors"].items()}
        self._dims = dict(state["dims"])
