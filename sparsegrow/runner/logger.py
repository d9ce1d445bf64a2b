"""An Avalanche logger that keeps what the evaluator emits, for the results files."""

from __future__ import annotations

from avalanche.logging import BaseLogger

# Eval accuracies arrive at every eval; only their latest value is needed (the matrix row).
_EVAL_PREFIX = "Top1_Acc_Exp/eval_phase/"


class CaptureLogger(BaseLogger):
    """Receives every metric value: latest values by name, plus the history of the others
    (GIFt/*, Model/*, training accuracies), which is checkpointed with the run."""

    def __init__(self):
        super().__init__()
        self.latest: dict[str, float] = {}
        self.records: list[tuple[str, float, int]] = []

    def log_single_metric(self, name, value, x_plot):
        if not isinstance(value, (int, float)):
            return
        self.latest[name] = value
        if not name.startswith(_EVAL_PREFIX) and "eval_phase" not in name:
            self.records.append((name, float(value), int(x_plot)))

    def accuracy_row(self, stream_name: str, n_experiences: int) -> list[float]:
        """Accuracy on every experience of ``stream_name`` at the last eval."""
        row = []
        for j in range(n_experiences):
            key = f"{_EVAL_PREFIX}{stream_name}/Task000/Exp{j:03d}"
            if key not in self.latest:
                raise KeyError(f"the evaluator emitted no {key}")
            row.append(float(self.latest[key]))
        return row

    def values(self, name: str) -> list[tuple[float, int]]:
        """Every (value, x) recorded under ``name``."""
        return [(v, x) for n, v, x in self.records if n == name]

    def state_dict(self) -> dict:
        return {"records": list(self.records)}

    def load_state_dict(self, state: dict) -> None:
        self.records = [tuple(r) for r in state["records"]]
