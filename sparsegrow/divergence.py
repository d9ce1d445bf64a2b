"""Stop training that diverged with one line, instead of a chance-level run or a LinAlgError.

Diverged means: the loss is not finite, or exploded to over ``loss_factor`` times its value at
the experience's first iteration (a step size too large for the model sends the loss from ~2 to
1e6 within a few iterations, then kills every ReLU, and the loss settles back to a finite value
while the parameters stay at ~1e20: without this check such a run finishes at chance accuracy),
or the gradients are not finite; at the end of an experience, also a parameter that is not
finite. Each raises :class:`~sparsegrow.errors.DivergenceError` naming the experience, the first
bad iteration and the likely cause.

No host synchronisation per step: every iteration's verdict is accumulated on the device (the
first bad iteration kept with ``torch.where``), and read on the host every ``check_every``
iterations, at the end of each experience, and whenever :meth:`DivergenceGuard.check` is called.
The plugins call it before any linear algebra they run (growth spectra, subspace bases,
importance), so no eigendecomposition ever meets a non-finite matrix; the reported iteration is
the first bad one, however late it is read.

One guard serves every plugin of a strategy: :class:`~sparsegrow.plugins.SparseGrowPlugin`,
:class:`~sparsegrow.plugins.GrowthPlugin` and :class:`~sparsegrow.plugins.FreezingPlugin` each
own one, and the runner adds one as a plugin of its own; at ``before_training`` the first guard
among the strategy's plugins leads and the others hand their checks to it, so each step is
observed once.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

from sparsegrow.errors import ConfigError, DivergenceError

_NONE = -1.0   # no bad iteration yet
# the verdict kept for the first bad iteration: [iteration, epoch, loss, gradient norm, kind]
_LOSS_NOT_FINITE, _LOSS_EXPLODED, _GRAD_NOT_FINITE = 0.0, 1.0, 2.0


def _guards(plugins):
    """Every guard reachable from ``plugins``: guards themselves, a plugin's ``divergence``,
    and those of a composed plugin's ``parts``, in plugin order."""
    for plugin in plugins:
        if isinstance(plugin, DivergenceGuard):
            yield plugin
        elif isinstance(getattr(plugin, "divergence", None), DivergenceGuard):
            yield plugin.divergence
        yield from _guards(getattr(plugin, "parts", ()))


class DivergenceGuard(SupervisedPlugin, supports_distributed=False):
    """Raise :class:`~sparsegrow.errors.DivergenceError` when training diverged (a non-finite
    or exploded loss, non-finite gradients, a non-finite parameter at an experience's end).

    ``supports_distributed`` is False: each process checks its own loss, and one process
    stopping alone would leave the others waiting at the next collective.

    With a ``torch.amp.GradScaler`` on the strategy (a ``scaler`` attribute), non-finite
    gradients are the scaler's skipped steps, not divergence: only the loss is checked.

    :param loss_factor: the loss exploded when it exceeds this many times its value at the
        experience's first iteration (at least 1). The reference is per experience, so that a
        resumed run checks exactly as an uninterrupted one.
    :param check_every: read the accumulated verdict on the host every this many training
        iterations (one synchronisation each); it is also read at every experience's end and
        before the plugins' linear algebra.
    """

    #: the learning rate's name in the advice; the runner's guard names its config key
    lr_key = "lr"

    def __init__(self, *, loss_factor: float = 1e4, check_every: int = 50):
        super().__init__()
        if not isinstance(loss_factor, (int, float)) or not loss_factor >= 1:
            raise ConfigError(f"loss_factor must be a number ≥ 1, got {loss_factor!r}")
        if not isinstance(check_every, int) or check_every < 1:
            raise ConfigError(f"check_every must be a positive integer, got {check_every!r}")
        self.loss_factor = float(loss_factor)
        self.check_every = check_every
        self._leader: DivergenceGuard | None = None   # another guard that observes for us
        self._reset()

    def _reset(self) -> None:
        self._reference: torch.Tensor | None = None   # max(|first loss|, 1), on the device
        self._verdict: torch.Tensor | None = None     # see _NONE and the kinds above
        self._unread = 0                              # iterations observed since the last read

    @property
    def leads(self) -> bool:
        return self._leader is None

    # -- callbacks -------------------------------------------------------------------------
    def before_training(self, strategy, **kwargs):
        first = next(_guards(strategy.plugins), self)
        self._leader = None if first is self else first

    def before_training_exp(self, strategy, **kwargs):
        if self.leads:
            self._reset()

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if not self.leads:
            return
        # the loss holds every plugin's penalty by now
        loss = torch.as_tensor(strategy.loss).detach().float().reshape(())
        device = loss.device
        if self._reference is None:
            self._reference = loss.abs().clamp_min(1.0)
            self._verdict = torch.full((5,), _NONE, dtype=torch.float64, device=device)
        finite = torch.isfinite(loss)
        bad = ~finite | (loss.abs() > self.loss_factor * self._reference)
        kind = torch.where(finite, _LOSS_EXPLODED, _LOSS_NOT_FINITE)
        grad = torch.zeros((), device=device)
        if getattr(strategy, "scaler", None) is None:
            grads = [p.grad for p in strategy.model.parameters() if p.grad is not None]
            if grads:
                norms = torch._foreach_norm(grads)
                grad = torch.stack([n.float().to(device) for n in norms]).norm()
                kind = torch.where(bad, kind, _GRAD_NOT_FINITE)
                bad = bad | ~torch.isfinite(grad)
        # the iteration and epoch enter as fill values: no host-to-device copy
        clock = strategy.clock
        record = torch.stack([
            torch.full((), float(clock.train_exp_iterations), dtype=torch.float64, device=device),
            torch.full((), float(clock.train_exp_epochs), dtype=torch.float64, device=device),
            loss.double(), grad.double(), kind.double()])
        self._verdict = torch.where(bad & (self._verdict[0] == _NONE), record, self._verdict)
        self._unread += 1
        if self._unread >= self.check_every:
            self.check(strategy)

    def after_training_exp(self, strategy, **kwargs):
        self.check(strategy)
        if self.leads:
            self._check_parameters(strategy)

    # -- checks ----------------------------------------------------------------------------
    def check(self, strategy) -> None:
        """Read the verdict accumulated since the last read (one host synchronisation; none
        if no iteration was observed since) and raise if an iteration diverged."""
        if not self.leads:
            self._leader.check(strategy)
            return
        if self._verdict is None or self._unread == 0:
            return
        self._unread = 0
        iteration, epoch, loss, grad, kind = self._verdict.tolist()
        if iteration == _NONE:
            return
        where = (f"experience {strategy.clock.train_exp_counter}, iteration {int(iteration)} "
                 f"(epoch {int(epoch)})")
        if kind == _LOSS_NOT_FINITE:
            what = f"training loss is {loss}"
        elif kind == _LOSS_EXPLODED:
            what = (f"training loss exploded to {loss:.3g}, over {self.loss_factor:g} × its value "
                    f"at the experience's first iteration ({float(self._reference):.3g})")
        else:
            what = f"the gradients are not finite (norm {grad}) at a finite loss ({loss:.3g})"
        raise DivergenceError(f"{where}: {what}; {self._cause(strategy)}")

    def _check_parameters(self, strategy) -> None:
        named = list(strategy.model.named_parameters())
        if not named:
            return
        finite = torch.stack([torch.isfinite(p).all().to(named[0][1].device)
                              for _, p in named]).tolist()   # one synchronisation
        for (name, _), ok in zip(named, finite):
            if not ok:
                raise DivergenceError(
                    f"experience {strategy.clock.train_exp_counter}, after its last iteration "
                    f"{strategy.clock.train_exp_iterations - 1}: parameter {name} is not "
                    f"finite; {self._cause(strategy)}")

    def _cause(self, strategy) -> str:
        group = strategy.optimizer.param_groups[0]
        return (f"likely cause: the learning rate ({type(strategy.optimizer).__name__.lower()}, "
                f"{self.lr_key}={group['lr']:g}) or a plugin's loss penalty is too large for "
                f"this model; lower it")
