"""Experiment tracking: a run's losses, learning rate and metrics sent to CSV, TensorBoard, MLflow or W&B.

``logger=<name>`` picks a backend (``conf/logger/<name>.yaml``, keys in
:class:`bench.config.schema.LoggerConfig`); ``none`` (the default) logs nothing. Every backend is one
module in this package registered in :data:`LOGGERS` and imports its library only when a run uses it.
The trainer feeds the backend through :class:`bench.engine.callbacks.TrackingCallback`: the losses
per term and the learning rate every ``train.log_interval`` steps (the values the trainer already
reads, so tracking adds no device sync), every intermediate validation, the final metrics, and the
resolved config once. Tuning trials set ``logger.group`` to their study, so a study's trials appear together.
"""

from __future__ import annotations

from bench.tracking.base import LOGGERS, ExperimentLogger, RunInfo, build_logger

__all__ = ["LOGGERS", "ExperimentLogger", "RunInfo", "build_logger"]
