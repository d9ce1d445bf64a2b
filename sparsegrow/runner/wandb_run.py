"""One W&B run per strategy × seed through wandb's public API (Avalanche's WandBLogger is
broken with wandb 0.31, see the facts note).

``mode: auto`` is online when an API key is configured (``WANDB_API_KEY`` or wandb's netrc
entry for its base URL), offline otherwise; offline runs are synced later with ``wandb sync``.
"""

from __future__ import annotations

import os
from pathlib import Path


def api_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    import wandb
    from wandb.sdk.lib.wbauth import read_netrc_auth
    from wandb.errors import AuthenticationError

    try:
        return bool(read_netrc_auth(host=wandb.setup().settings.base_url))
    except AuthenticationError:
        return False


def resolve_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if api_key_configured() else "offline"
    return mode


# growth-event fields shown in the W&B table (events.json has them all)
_EVENT_COLUMNS = ["experience", "iteration", "op", "init", "params_before", "params_after",
                  "GIFt/acc_before_growth", "GIFt/acc_after_growth", "GIFt/at_growth"]


def _describe(operation: dict) -> str:
    """``widen fc1 +4``, ``deepen fc2``: one growth operation in a table cell."""
    units = f" +{operation['units']}" if "units" in operation else ""
    return f"{operation['op']} {operation['layer']}{units}"


class WandbRun:
    """Logs one run: per-experience accuracies and model size, growth events, the accuracy
    matrix as a table and the final metrics in the run summary."""

    def __init__(self, *, project: str, group: str, name: str, run_id: str, mode: str,
                 directory: Path, config: dict):
        import wandb

        Path(directory).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, group=group, name=name, id=run_id,
                              resume="allow", mode=mode, dir=str(directory), config=config,
                              reinit="create_new", settings=wandb.Settings(silent=True))
        self.mode = mode
        self._step = 0

    @property
    def location(self) -> str:
        """Offline: the run folder to pass to ``wandb sync``; online: the run URL."""
        if self.mode == "offline":
            return str(Path(self.run.settings.sync_dir))
        return self.run.url or ""

    def log_experience(self, step: int, row: list[float], seen_avg: float, params: int,
                       events: list[dict], protection: dict[str, float]) -> None:
        data = {f"acc/exp_{j}": acc for j, acc in enumerate(row)}
        data.update({"acc/avg": seen_avg, "acc/avg_all": sum(row) / len(row),
                     "model/params": params, "growth/events": len(events)})
        data.update({f"protection/{key}": value for key, value in protection.items()})
        gifts = [e["GIFt/at_growth"] for e in events if "GIFt/at_growth" in e]
        if gifts:
            data["growth/GIFt_at_growth"] = sum(gifts) / len(gifts)
        self.run.log(data, step=step)
        self._step = step

    def finish(self, matrix: list[list[float]], events: list[dict], summary: dict) -> None:
        import wandb

        columns = ["trained_exp"] + [f"exp_{j}" for j in range(len(matrix[-1]))]
        tables = {"accuracy_matrix": wandb.Table(
            columns=columns, data=[[i, *row] for i, row in enumerate(matrix)])}
        if events:
            tables["growth_events"] = wandb.Table(
                columns=[*_EVENT_COLUMNS, "layers"],
                data=[[e.get(c) for c in _EVENT_COLUMNS]
                      + [", ".join(map(_describe, e["operations"]))] for e in events])
        self.run.log(tables, step=self._step)
        for key, value in summary.items():
            if value is not None:
                self.run.summary[key] = value
        self.run.finish()

    def abandon(self) -> None:
        self.run.finish(exit_code=1)
