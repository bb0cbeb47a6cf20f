"""Experiment tracking: each backend's output read back with the tool's own reader."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.config.compose import config_hash
from bench.engine.trainer import train_run
from bench.errors import ConfigError

from ..conftest import tiny_config

# 6 steps, logged every 2, validated at step 3: three training logs and one intermediate validation.
LOGGED = ["train.val_interval=3"]


def test_logger_is_not_part_of_the_config_hash(tmp_path):
    plain = tiny_config(tmp_path)
    tracked = tiny_config(tmp_path, "logger=mlflow", "logger.experiment=x")
    assert config_hash(plain) == config_hash(tracked)


@pytest.mark.slow
def test_csv_logger_writes_losses_lr_and_metrics(tmp_path):
    row = train_run(tiny_config(tmp_path, "logger=csv", *LOGGED))
    frame = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")
    wide = frame.pivot(index="step", columns="key", values="value")
    assert list(wide.index) == [2, 3, 4, 6]
    assert wide.loc[[2, 4, 6], "train/lr"].notna().all() and wide.loc[[2, 4, 6], "train/ce"].notna().all()
    assert wide.loc[6, "val/miou"] == pytest.approx(row["metrics"]["miou"])
    assert wide.loc[3, "val/miou_during_training"] >= 0
    assert (tmp_path / "run" / "logs" / "config.json").is_file()


@pytest.mark.slow
def test_tensorboard_logger_is_readable_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the test extra installs tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    row = train_run(tiny_config(tmp_path, "logger=tensorboard", f"logger.dir={tmp_path / 'tb'}", *LOGGED))
    (run_dir,) = (tmp_path / "tb").glob("*/*/*/*/*")  # <dir>/<dataset>/<student>/<teacher>/<method>/<run>
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6]
    # TensorBoard keeps float32: 1e-6 of a fraction, in percent
    assert events.Scalars("val/miou")[0].value == pytest.approx(row["metrics"]["miou"], abs=1e-4)


@pytest.mark.slow
def test_mlflow_logger_is_readable_by_mlflow(tmp_path):
    pytest.importorskip("mlflow", reason="the test extra installs mlflow-skinny")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["logger=mlflow", f"logger.tracking_uri={uri}", "logger.group=study-a", *LOGGED]
    row = train_run(tiny_config(tmp_path, *overrides))
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkd-bench").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["group"] == "study-a" and run.data.tags["method"] == "baseline"
    assert run.data.params["train.iterations"] == "6"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [2, 4, 6]
    assert run.data.metrics["val/miou"] == pytest.approx(row["metrics"]["miou"])
    assert run.info.artifact_uri.startswith(tmp_path.resolve().as_uri())  # beside the store, not in the cwd


def test_unknown_logger_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="tensorboard"):
        tiny_config(tmp_path, "logger=neptune")
