"""Mixed-precision training for Avalanche's SGD templates (``training.amp``).

Avalanche 0.6's templates have no AMP. :func:`amp_template` derives a template whose forward
pass and loss run under ``torch.autocast`` for each iteration separately: an autocast region
caches the low-precision copies of the weights until it exits, so one around a whole epoch would
keep computing with the weights of its first step. With float16 a ``torch.amp.GradScaler``
scales the loss for the backward pass and skips the steps whose gradients overflowed; the
strategy's ``loss`` stays the unscaled loss (what the divergence guard and the loggers read), and
the scaler is the strategy's ``scaler`` attribute (the guard reads a non-finite gradient under a
scaler as a skipped step, not as divergence). The plugins' statistics, bases and projections run
in float32 regardless (:func:`sparsegrow.linalg.full_precision`).
"""

from __future__ import annotations

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class AmpTraining:
    """Mixin before an Avalanche SGD template: autocast around ``forward`` and ``criterion``,
    GradScaler around ``backward`` and ``optimizer_step`` (float16 only)."""

    autocast_dtype: torch.dtype | None = None

    def __init__(self, **kwargs):   # Avalanche's constructors take keywords only
        super().__init__(**kwargs)
        # bfloat16 has float32's range: only float16's gradients can overflow and need scaling
        self.scaler = (torch.amp.GradScaler(torch.device(self.device).type)
                       if self.autocast_dtype == torch.float16 else None)

    def _autocast(self):
        return torch.autocast(device_type=torch.device(self.device).type,
                              dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def forward(self):
        with self._autocast():
            return super().forward()

    def criterion(self):
        with self._autocast():
            return super().criterion()

    def backward(self):
        if self.scaler is None:
            return super().backward()
        self.scaler.scale(self.loss).backward(retain_graph=self.retain_graph)

    def optimizer_step(self):
        if self.scaler is None:
            return super().optimizer_step()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def amp_template(template: type, amp) -> type:
    """``template`` itself for ``amp`` ``"off"`` (or YAML's ``false``), else its subclass with
    :class:`AmpTraining` in ``amp``'s precision (``"bf16"`` or ``"fp16"``)."""
    if amp in ("off", False):
        return template
    return type(f"Amp{template.__name__}", (AmpTraining, template),
                {"autocast_dtype": AMP_DTYPES[amp]})
