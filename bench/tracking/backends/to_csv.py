"""``logger=csv``: ``<dir>/metrics.csv`` in long format (step, key, value) and ``config.json``.

Read it with ``pandas.read_csv(...).pivot(index="step", columns="key", values="value")``. The file is
appended to and flushed at every log, so a crashed run keeps what it logged.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bench.config.schema import LoggerConfig
from bench.tracking.base import LOGGERS, ExperimentLogger, RunInfo
from bench.utils.io import write_json_atomic


@LOGGERS.register("csv")
class CSVLogger(ExperimentLogger):
    def __init__(self, cfg: LoggerConfig, run: RunInfo) -> None:
        super().__init__(cfg, run)
        self.dir = Path(cfg.dir) / run.folder if cfg.dir else run.output_dir / "logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "metrics.csv"
        new = not path.is_file()
        self._file = open(path, "a", newline="")  # noqa: SIM115 (open for the run's lifetime)
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(["step", "key", "value"])

    def log_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.dir / "config.json", {"run": self.run.name, **self.run.tags, "config": config})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._writer.writerows([step, k, v] for k, v in metrics.items())
        self._file.flush()

    def close(self, finished: bool) -> None:
        self._file.close()
