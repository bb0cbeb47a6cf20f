"""Hooks into a training run (pruning, tracking, tests), and the one that feeds a tracking tool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.evaluation.metrics import Metrics
from bench.results import in_percent

if TYPE_CHECKING:
    from bench.tracking import ExperimentLogger


class Callback:
    """Hooks into a run. Raising from a hook stops the run (e.g. ``optuna.TrialPruned``)."""

    def on_validation(self, step: int, metrics: Metrics) -> None:
        """After each intermediate validation (every ``train.val_interval`` steps)."""

    def on_step_end(self, step: int) -> None:
        """After every optimizer step; ``step`` counts completed steps. Must not sync the device."""

    def on_log(self, step: int, entry: dict[str, float]) -> None:
        """Every ``train.log_interval`` steps: the mean loss per term, their sum and the learning rate."""

    def on_fit_end(self, step: int, row: dict[str, Any] | None) -> None:
        """When the run ends: its result row, or None when it stopped early (pruned, diverged, crashed)."""


class TrackingCallback(Callback):
    """Sends what the trainer logs to an :class:`~bench.tracking.ExperimentLogger`."""

    def __init__(self, logger: ExperimentLogger, config: dict[str, Any], eval_split: str) -> None:
        self.logger = logger
        self.eval_split = eval_split
        logger.log_config(config)

    def on_log(self, step: int, entry: dict[str, float]) -> None:
        self.logger.log_metrics({f"train/{k}": v for k, v in entry.items() if k != "step"}, step)

    def on_validation(self, step: int, metrics: Any) -> None:
        # in percent, as the row's metrics (``Metrics`` holds fractions)
        self.logger.log_metrics({f"{self.eval_split}/miou_during_training": 100 * metrics.miou}, step)

    def on_fit_end(self, step: int, row: dict[str, Any] | None) -> None:
        if row is not None:
            m = in_percent(row)["metrics"]  # a reused row of an older version may hold fractions
            final = {f"{self.eval_split}/{k}": m[k] for k in ("miou", "aacc", "macc") if k in m}
            self.logger.log_metrics(final, step)
        self.logger.close(finished=row is not None)
