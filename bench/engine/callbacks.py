"""Hooks into a training run (pruning, tracking, tests)."""

from __future__ import annotations

from typing import Any

from bench.evaluation.metrics import Metrics


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
