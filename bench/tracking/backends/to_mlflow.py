"""``logger=mlflow``: one MLflow run per training run, in experiment ``logger.experiment``.

``logger.tracking_uri`` is any MLflow tracking URI (a server, ``databricks``, a database); the default
is a local SQLite store, ``sqlite:///results/mlflow.db`` with artifacts under ``results/mlruns``
(MLflow 3 refuses new plain-folder stores): ``mlflow ui --backend-store-uri sqlite:///results/mlflow.db``.
The run is tagged with its group (a tuning study, or dataset/student/teacher/method), dataset,
student, teacher, method and seed; the flattened config goes to params and ``config.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.config.schema import LoggerConfig
from bench.tracking.base import LOGGERS, ExperimentLogger, RunInfo
from bench.utils.secrets import mask_url

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def default_uri(folder: str) -> tuple[str, str]:
    """The local store: (tracking URI, artifact folder URI) under ``folder``."""
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "mlruns").as_uri()


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = str(value)[:MAX_PARAM_LENGTH]
    return out


@LOGGERS.register("mlflow")
class MLflowLogger(ExperimentLogger):
    requires = ("mlflow",)

    def __init__(self, cfg: LoggerConfig, run: RunInfo) -> None:
        super().__init__(cfg, run)
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        self._Metric, self._Param = Metric, Param
        uri, artifacts = (cfg.tracking_uri, None) if cfg.tracking_uri else default_uri(cfg.dir or "results")
        if uri.startswith("sqlite:///") and artifacts is None:  # beside the database, not in the cwd
            artifacts = (Path(uri[len("sqlite:///") :]).resolve().parent / "mlruns").as_uri()
        self.uri = uri
        self.client = MlflowClient(uri)
        experiment = self.client.get_experiment_by_name(cfg.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(cfg.experiment, artifact_location=artifacts)
        )
        tags = [RunTag("group", run.group), *(RunTag(k, v) for k, v in run.tags.items())]
        self.run_id = self.client.create_run(experiment_id, run_name=run.name, tags=None).info.run_id
        self.client.log_batch(self.run_id, tags=tags)

    def log_config(self, config: dict[str, Any]) -> None:
        params = [self._Param(k, v) for k, v in flatten(config).items()]
        for i in range(0, len(params), 100):  # MLflow's batch limit for params
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self.client.log_dict(self.run_id, config, "config.json")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[self._Metric(k, float(v), now, step) for k, v in metrics.items()]
        )

    def close(self, finished: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if finished else "KILLED")

    def __repr__(self) -> str:
        return f"MLflowLogger({mask_url(self.uri)}, run {self.run_id})"
