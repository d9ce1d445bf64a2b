"""WandBLogger: forgetting curves, accuracy matrix and growth events of any Avalanche run in W&B.

Built on wandb's public API: Avalanche 0.6's own ``avalanche.logging.WandBLogger`` fails with
current wandb (it calls the removed ``wandb.util.generate_id``, Avalanche issue #1674).

``mode="auto"`` is online when an API key is configured (``WANDB_API_KEY`` or wandb's netrc entry
for its base URL), offline otherwise; offline runs are uploaded later with ``wandb sync``.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path
from statistics import mean

import numpy as np
from avalanche.logging import BaseLogger
from torch import nn

from sparsegrow.errors import ConfigError
from sparsegrow.growth import count_parameters
from sparsegrow.growth.layers import width

MODES = ("auto", "online", "offline", "disabled")
TRAINED = "trained_exp"      # x of the experience-level charts: index of the experience trained
ITERATION = "iteration"      # x of the evaluator's own metrics (Avalanche's x_plot)
_EVAL_ACC = re.compile(r"^Top1_Acc_Exp/eval_phase/(?P<stream>[^/]+)/Task\d+/Exp(?P<exp>\d+)$")
_WIDTH = "Model/width/"
# growth-event fields: the GIFt metric's names -> this logger's growth/<field> keys
_GIFT = {"GIFt/acc_before_growth": "acc_before", "GIFt/acc_after_growth": "acc_after",
         "GIFt/at_growth": "GIFt"}
_EVENT_COLUMNS = [TRAINED, "iteration", "acc_before", "acc_after", "GIFt", "params_before",
                  "params_after", "layers"]


def api_key_configured() -> bool:
    import os

    if os.environ.get("WANDB_API_KEY"):
        return True
    import wandb
    from wandb.errors import AuthenticationError
    from wandb.sdk.lib.wbauth import read_netrc_auth

    try:
        return bool(read_netrc_auth(host=wandb.setup().settings.base_url))
    except AuthenticationError:
        return False


def resolve_mode(mode: str) -> str:
    """``auto`` -> ``online`` with an API key, else ``offline``; other modes unchanged."""
    if mode not in MODES:
        raise ConfigError(f"W&B mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        return "online" if api_key_configured() else "offline"
    return mode


def _layer_widths(model: nn.Module) -> dict[str, int]:
    return {name: width(m) for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv2d))}


def _heatmap(rows: list[tuple[int, dict[int, float]]], n: int) -> np.ndarray:
    """The accuracy matrix as an RGB image (rows: after training, columns: evaluated on)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.full((len(rows), n), np.nan)
    for i, (_, row) in enumerate(rows):
        for j, acc in row.items():
            matrix[i, j] = acc
    size = (min(10.0, max(4.0, 1.5 + 0.45 * n)), min(8.0, max(3.0, 1.2 + 0.35 * len(rows))))
    fig = Figure(figsize=size, dpi=100)
    ax = fig.subplots()
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_xlabel("evaluated on experience")
    ax.set_ylabel("after training experience")
    # at most about 20 labelled ticks per axis
    ax.set_xticks(range(0, n, -(-n // 20)))
    shown = range(0, len(rows), -(-len(rows) // 20))
    ax.set_yticks(shown, [str(rows[i][0]) for i in shown])
    if n <= 12:   # readable cell values only while the cells are large enough
        for (i, j), acc in np.ndenumerate(matrix):
            if not np.isnan(acc):
                ax.text(j, i, f"{acc:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if acc < 0.5 else "black")
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class WandBLogger(BaseLogger):
    """Avalanche logger to Weights & Biases that shows continual-learning results.

    Put it in ``EvaluationPlugin(..., loggers=[...])`` beside Avalanche's loggers. It builds
    its charts from whatever metrics the evaluator emits:

    - every scalar metric under its Avalanche name, against ``iteration`` (Avalanche's x);
    - after every training experience, from the ``Top1_Acc_Exp`` accuracies of the next
      ``strategy.eval()`` on ``stream``, against ``trained_exp`` (index of the experience just
      trained): ``acc/exp_<j>`` per experience, ``acc/avg`` (over the evaluated experiences),
      ``acc/avg_seen`` (over those trained so far), ``model/params``, ``growth/events``
      (count so far), the forgetting curves ``acc/forgetting_curves`` (a line series chart,
      one line per experience), the accuracy matrix ``acc/matrix`` (table) and
      ``acc/matrix_heatmap`` (image);
    - at every growth event reported by :class:`~sparsegrow.GIFtMetric`, against
      ``trained_exp`` (the experience being trained): ``growth/acc_before``,
      ``growth/acc_after``, ``growth/GIFt``, ``growth/params_before``,
      ``growth/params_after``, ``growth/units/<layer>`` (units added; the layer's width for a
      new layer) and the table ``growth/table`` of all events so far.

    Call :meth:`finish` at the end (wandb also finishes the run when the process exits).
    Pickled with the strategy (Avalanche's ``save_checkpoint``), it continues the same W&B run
    when loaded.

    :param project: W&B project.
    :param name: run name (W&B draws one when None).
    :param group: W&B group, e.g. the experiment of several seeds.
    :param run_id: W&B run id; a run with this id is resumed (``resume="allow"``).
    :param mode: ``"auto"`` (online with an API key, else offline), ``"online"``,
        ``"offline"`` or ``"disabled"``.
    :param dir: folder for wandb's local files (wandb's default, ``./wandb``, when None).
    :param config: hyperparameters recorded with the run.
    :param stream: name of the evaluation stream in the metric names whose accuracies make the
        accuracy matrix (``benchmark.test_stream`` is ``"test_stream"``).
    :param init_kwargs: further arguments of ``wandb.init`` (``entity``, ``tags``, ...).
    """

    def __init__(self, *, project: str = "sparsegrow", name: str | None = None,
                 group: str | None = None, run_id: str | None = None, mode: str = "auto",
                 dir: str | Path | None = None, config: dict | None = None,
                 stream: str = "test_stream", init_kwargs: dict | None = None):
        super().__init__()
        import wandb

        self.mode = resolve_mode(mode)
        self.stream = stream
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self._init = {"project": project, "name": name, "group": group, "id": run_id,
                      "resume": "allow" if run_id else None, "mode": self.mode,
                      "dir": None if dir is None else str(dir), "config": config,
                      "reinit": "create_new", **(init_kwargs or {})}
        self.run = wandb.init(**self._init)
        self.rows: list[tuple[int, dict[int, float]]] = []   # (trained_exp, {j: accuracy})
        self.events: list[dict] = []
        self._trained = 0                # training experiences finished
        self._seen: set[int] = set()     # their experience ids
        self._joint = False              # JointTraining: one training covers every experience
        self._step = 0                   # W&B step: kept across a resume, so it only increases
        self._params: int | None = None  # model size before the next growth event
        self._widths: dict[str, int] = {}
        self._training = False
        self._eval: dict[int, float] = {}
        self._batch: dict[str, tuple[float, int]] = {}
        self._axes: set[str] = set()     # names whose x axis is defined in this process

    # -- what W&B receives -----------------------------------------------------------------
    @property
    def location(self) -> str:
        """Offline: the run folder to pass to ``wandb sync``; online: the run URL."""
        if self.mode == "offline":
            return str(Path(self.run.settings.sync_dir))
        return self.run.url or ""

    def _log(self, data: dict, axis: str) -> None:
        for name, value in data.items():
            if name not in self._axes and name != axis and isinstance(value, numbers.Real):
                self.run.define_metric(name, step_metric=axis)
                self._axes.add(name)
        if axis not in self._axes:
            self.run.define_metric(axis)
            self._axes.add(axis)
        self.run.log(data, step=self._step)
        self._step += 1

    def log_values(self, values: dict[str, float]) -> None:
        """Log further scalars against ``trained_exp``, at the last experience trained."""
        self._log({TRAINED: max(self._trained - 1, 0), **values}, axis=TRAINED)

    def finish(self, *, summary: dict | None = None, exit_code: int = 0) -> None:
        """Write ``summary`` (None values left out) to the run summary and finish the run."""
        for key, value in (summary or {}).items():
            if value is not None:
                self.run.summary[key] = value
        self.run.finish(exit_code=exit_code)

    # -- Avalanche logger protocol ---------------------------------------------------------
    def log_single_metric(self, name, value, x_plot):
        if not isinstance(value, numbers.Real):   # images, tensors, figures: not shown
            return
        match = _EVAL_ACC.match(name)
        if match and match["stream"] == self.stream:
            self._eval[int(match["exp"])] = float(value)
        self._batch[name] = (value, int(x_plot))

    def log_metrics(self, metric_values) -> None:
        self._batch = {}
        super().log_metrics(metric_values)   # fills _batch through log_single_metric
        by_x: dict[int, dict[str, float]] = {}
        for name, (value, x) in self._batch.items():
            by_x.setdefault(x, {})[name] = value
        for x, values in sorted(by_x.items()):
            self._log({ITERATION: x, **values}, axis=ITERATION)
            if any(n in _GIFT or n.startswith(_WIDTH) for n in values):
                self._growth_event(x, values)

    def before_training(self, strategy, metric_values, **kwargs):
        from avalanche.training import JointTraining

        self._training = True
        self._joint = isinstance(strategy, JointTraining)

    def before_training_exp(self, strategy, metric_values, **kwargs):
        # the baseline of the next growth event's units and parameter count
        self._params = count_parameters(strategy.model)
        self._widths = _layer_widths(strategy.model)

    def after_training_exp(self, strategy, metric_values, **kwargs):
        self._trained += 1
        self._seen.add(int(strategy.experience.current_experience))

    def after_training(self, strategy, metric_values, **kwargs):
        self._training = False

    def before_eval(self, strategy, metric_values, **kwargs):
        self._eval = {}

    def after_eval(self, strategy, metric_values, **kwargs):
        # periodic evaluation inside train() and evaluation before any training make no row
        if self._training or not self._trained or not self._eval:
            return
        k, row = self._trained - 1, dict(sorted(self._eval.items()))
        if self.rows and self.rows[-1][0] == k:   # evaluated again after the same experience
            self.rows[-1] = (k, row)
        else:
            self.rows.append((k, row))
        data = {TRAINED: k, **{f"acc/exp_{j:03d}": acc for j, acc in row.items()},
                "acc/avg": mean(row.values()), "model/params": count_parameters(strategy.model),
                "growth/events": len(self.events)}
        seen = [acc for j, acc in row.items() if self._joint or j in self._seen]
        if seen:
            data["acc/avg_seen"] = mean(seen)
        if self.mode != "disabled":   # charts nobody receives are not drawn
            data.update(self._matrix_views())
        self._log(data, axis=TRAINED)

    # -- derived views ---------------------------------------------------------------------
    def _matrix_views(self) -> dict:
        import wandb

        n = 1 + max(j for _, row in self.rows for j in row)
        table = wandb.Table(columns=[TRAINED, *(f"exp_{j:03d}" for j in range(n))],
                            data=[[k, *(row.get(j) for j in range(n))] for k, row in self.rows])
        curves = wandb.plot.line_series(
            xs=[[k for k, row in self.rows if j in row] for j in range(n)],
            ys=[[row[j] for _, row in self.rows if j in row] for j in range(n)],
            keys=[f"exp {j}" for j in range(n)], xname=TRAINED,
            title=f"Accuracy on each experience of {self.stream} (forgetting curves)")
        return {"acc/forgetting_curves": curves, "acc/matrix": table,
                "acc/matrix_heatmap": wandb.Image(_heatmap(self.rows, n))}

    def _growth_event(self, x: int, values: dict) -> None:
        import wandb

        widths = {n[len(_WIDTH):]: int(v) for n, v in values.items() if n.startswith(_WIDTH)}
        units = {layer: w - self._widths.get(layer, 0) for layer, w in widths.items()
                 if w != self._widths.get(layer)}
        self._widths.update(widths)
        event = {TRAINED: self._trained, "iteration": x,
                 **{field: values.get(name) for name, field in _GIFT.items()},
                 "params_before": self._params, "params_after": values.get("Model/params"),
                 "units": units}
        if event["params_after"] is not None:
            self._params = int(event["params_after"])
        self.events.append(event)
        data = {f"growth/{k}": v for k, v in event.items()
                if k not in (TRAINED, "units") and v is not None}
        data.update({f"growth/units/{layer}": u for layer, u in units.items()})
        table = wandb.Table(columns=_EVENT_COLUMNS, data=[
            [*(e[c] for c in _EVENT_COLUMNS[:-1]),
             ", ".join(f"{layer} +{u}" for layer, u in e["units"].items())]
            for e in self.events])
        self._log({TRAINED: self._trained, **data, "growth/table": table}, axis=TRAINED)

    # -- resume ----------------------------------------------------------------------------
    def __getstate__(self):
        """Pickled with the strategy (Avalanche's ``save_checkpoint``): without the live run,
        which unpickling resumes by its id."""
        state = {**vars(self), "run": None, "_axes": set()}
        state["_init"] = {**self._init, "id": self.run.id, "resume": "allow"}
        return state

    def __setstate__(self, state):
        import wandb

        vars(self).update(state)
        self.run = wandb.init(**self._init)

    def state_dict(self) -> dict:
        return {"rows": [(k, dict(row)) for k, row in self.rows],
                "events": [dict(e) for e in self.events], "trained": self._trained,
                "seen": sorted(self._seen), "step": self._step}

    def load_state_dict(self, state: dict) -> None:
        self.rows = [(k, dict(row)) for k, row in state["rows"]]
        self.events = [dict(e) for e in state["events"]]
        self._trained, self._seen = state["trained"], set(state["seen"])
        self._step = state["step"]
