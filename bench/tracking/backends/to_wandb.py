"""``logger=wandb``: Weights & Biases, offline by default (``logger.mode=online`` to sync at once).

Offline runs are written under ``logger.dir`` (default ``results/wandb``) and uploaded later with
``wandb sync``. Project: ``logger.experiment``; group: the tuning study (or
dataset/student/teacher/method); the resolved config is the run's config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config.schema import LoggerConfig
from bench.tracking.base import LOGGERS, ExperimentLogger, RunInfo


@LOGGERS.register("wandb")
class WandbLogger(ExperimentLogger):
    requires = ("wandb",)

    def __init__(self, cfg: LoggerConfig, run: RunInfo) -> None:
        super().__init__(cfg, run)
        import wandb

        folder = Path(cfg.dir or "results/wandb")
        folder.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=cfg.experiment,
            group=run.group,
            name=run.name,
            tags=[f"{k}:{v}" for k, v in run.tags.items()],
            dir=str(folder),
            mode=cfg.mode,
            reinit="create_new",  # several runs (a sweep's trials) in one process
        )

    def log_config(self, config: dict[str, Any]) -> None:
        self._run.config.update({**self.run.tags, **config}, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def close(self, finished: bool) -> None:
        self._run.finish(exit_code=0 if finished else 1)
