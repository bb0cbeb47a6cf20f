"""``logger=tensorboard``: event files under ``<dir>/<group>/<run>`` (``tensorboard --logdir <dir>``).

Scalars per step, and the resolved config as a text summary. Default ``dir``: ``results/tensorboard``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.config.schema import LoggerConfig
from bench.tracking.base import LOGGERS, ExperimentLogger, RunInfo


@LOGGERS.register("tensorboard")
class TensorBoardLogger(ExperimentLogger):
    requires = ("tensorboard",)

    def __init__(self, cfg: LoggerConfig, run: RunInfo) -> None:
        super().__init__(cfg, run)
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(cfg.dir or "results/tensorboard") / run.folder
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_config(self, config: dict[str, Any]) -> None:
        text = json.dumps({**self.run.tags, "config": config}, indent=2, default=str)
        self._writer.add_text("config", f"```\n{text}\n```", 0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)

    def close(self, finished: bool) -> None:
        self._writer.close()
