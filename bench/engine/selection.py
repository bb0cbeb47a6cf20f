"""Which checkpoint's scores a run reports: ``eval.select``.

``last`` (default): the trained model's. ``best_on_val``: the best of the validations on
``eval.split`` every ``eval.select_interval`` steps and at the end, as CIRKD reports ("best of 50
validations on val", winycg/CIRKD ``train_baseline.py``: ``val_per_iters`` 800 of 40k, keeping
``best_pred``). That score is chosen on the split it is reported on, so it is optimistic; the
result row says so (``selection``) and the report flags it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.config.schema import EvalSelect, RunConfig
from bench.errors import ConfigError
from bench.evaluation import Metrics

# CIRKD validates 50 times in a run (every 800 of 40,000 iterations).
CIRKD_VALIDATIONS = 50


def select_interval(cfg: RunConfig) -> int:
    """Steps between the validations of ``best_on_val`` (0 when the run reports its last model)."""
    if cfg.eval.select != EvalSelect.best_on_val:
        return 0
    if cfg.eval.select_interval < 0:
        raise ConfigError(f"eval.select_interval must be >= 0, got {cfg.eval.select_interval}")
    return cfg.eval.select_interval or max(cfg.train.iterations // CIRKD_VALIDATIONS, 1)


@dataclass
class BestOnVal:
    """The best validation so far: its step, scores and the student's weights (on the CPU)."""

    split: str
    interval: int
    validations: int = 0
    step: int | None = None
    metrics: dict[str, Any] | None = None
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def offer(self, step: int, metrics: Metrics, model: torch.nn.Module) -> None:
        """One validation's scores; kept, with a copy of the weights, when they beat the best
        (ties keep the earlier, as CIRKD's ``new_pred > best_pred``)."""
        self.validations += 1
        if self.metrics is None or metrics.miou > self.metrics["miou"]:
            self.step, self.metrics = step, metrics.as_dict()
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def best(self) -> Metrics:
        m = copy.deepcopy(self.metrics)
        nan = float("nan")
        m["iou"] = [nan if x is None else x for x in m["iou"]]
        m["acc"] = [nan if x is None else x for x in m["acc"]]
        return Metrics(**m)

    def record(self) -> dict[str, Any]:
        """What the result row says about the selection."""
        return {
            "rule": EvalSelect.best_on_val.value,
            "split": self.split,
            "interval": self.interval,
            "validations": self.validations,
            "best_step": self.step,
        }

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("validations", "step", "metrics", "weights")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def last_record() -> dict[str, Any]:
    return {"rule": EvalSelect.last.value}
