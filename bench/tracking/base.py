"""The logger interface and its registry (the trainer feeds a logger through
:class:`bench.engine.callbacks.TrackingCallback`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config.schema import LoggerConfig
from bench.errors import ConfigError
from bench.registry import Registry

LOGGERS: Registry[type[ExperimentLogger]] = Registry("logger", "bench.tracking.backends")


@dataclass
class RunInfo:
    """What identifies a run in a tracking tool."""

    name: str  # e.g. "kd/deeplabv3_tiny/seed0" or "trial 3"
    group: str  # runs shown together: a study, or dataset/student/teacher/method
    output_dir: Path
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """``<group>/<name>``, the name made one folder ("kd/r18/seed0" → "kd-r18-seed0")."""
        return Path(self.group) / self.name.replace("/", "-").replace(" ", "_")


class ExperimentLogger:
    """One run in one tracking tool. Subclasses import their library in ``__init__``."""

    requires: tuple[str, ...] = ()  # modules the backend imports, named in the missing-package error

    def __init__(self, cfg: LoggerConfig, run: RunInfo) -> None:
        self.cfg, self.run = cfg, run

    def log_config(self, config: dict[str, Any]) -> None:
        """The resolved run config, once at the start."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Scalars at a training step."""

    def close(self, finished: bool) -> None:
        """Flush and end the run; ``finished`` is false for a run that stopped early (pruned, crashed)."""


def build_logger(cfg: LoggerConfig, run: RunInfo) -> ExperimentLogger | None:
    """The configured backend for ``run``, or None for ``logger=none``."""
    if cfg.name == "none":
        return None
    backend = LOGGERS.get(cfg.name)
    missing = [m for m in backend.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"logger={cfg.name} needs the package(s) {', '.join(missing)}: "
            "pip install -e '.[tracking]' (or the package alone)"
        )
    return backend(cfg, run)
