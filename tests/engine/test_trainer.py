"""End-to-end training on CPU: train + eval, result rows, determinism, resume, failure modes."""

import json
import math
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from bench.config.schema import TermConfig
from bench.engine.trainer import Callback, Trainer, train_run
from bench.errors import CheckpointError, ConfigError, NonFiniteLossError
from bench.methods import TERMS
from bench.methods.base import LossTerm

from ..conftest import CrashAt, tiny_config

pytestmark = pytest.mark.slow  # trains models end to end


def test_baseline_trains_evaluates_and_writes_a_complete_row(tmp_path):
    cfg = tiny_config(tmp_path)
    row = train_run(cfg)
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk["config_hash"] == row["config_hash"]
    assert 0.0 <= on_disk["metrics"]["miou"] <= 100.0  # percent
    assert len(on_disk["metrics"]["iou"]) == cfg.dataset.num_classes
    assert on_disk["teacher"] is None and on_disk["teacher_checkpoint"] is None  # baseline needs none
    assert on_disk["config"]["train"]["iterations"] == 6 and on_disk["seed"] == 0
    for key in ("git", "packages", "device_name"):
        assert key in on_disk["environment"]
    assert on_disk["environment"]["packages"]["torch"] == torch.__version__.split("+")[0]
    cost = on_disk["cost"]
    assert cost["step_time_ms"] > 0 and cost["images_per_s"] > 0 and cost["peak_mem_mb"] > 0
    assert on_disk["model"]["params_active"] > 0
    assert [h["step"] for h in on_disk["history"]] == [2, 4, 6]
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_kd_run_records_the_teacher(tmp_path, teachers_dir):
    row = train_run(tiny_config(tmp_path, "method=kd", f"teachers_dir={teachers_dir}"))
    assert row["teacher"] == "deeplabv3_small"
    assert len(row["teacher_checkpoint"]["sha256"]) == 64
    assert row["history"][-1]["kd"] > 0


def test_rerun_gives_identical_metrics(tmp_path, teachers_dir):
    a = train_run(tiny_config(tmp_path / "a", "method=kd", f"teachers_dir={teachers_dir}"))
    b = train_run(tiny_config(tmp_path / "b", "method=kd", f"teachers_dir={teachers_dir}"))
    assert a["metrics"] == b["metrics"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, teachers_dir):
    common = [
        "method=kd",
        f"teachers_dir={teachers_dir}",
        "train.iterations=8",
        "train.checkpoint_interval=4",
    ]
    full = train_run(tiny_config(tmp_path / "full", *common))
    crashed = tiny_config(tmp_path / "crash", *common)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(crashed, callbacks=[CrashAt(6)])  # checkpoint at 4; steps 5-6 are lost
    assert not (tmp_path / "crash" / "run" / "result.json").exists()
    resumed = Trainer(tiny_config(tmp_path / "crash", *common, "resume=true"))
    row = resumed.fit()
    assert row["metrics"] == full["metrics"]
    assert [h["loss"] for h in row["history"]] == [h["loss"] for h in full["history"]]


def test_resume_of_a_finished_run_reuses_it_and_other_configs_are_refused(tmp_path):
    first = train_run(tiny_config(tmp_path))
    again = train_run(tiny_config(tmp_path, "resume=true"))
    assert again == first
    with pytest.raises(ConfigError, match="resume=true"):
        train_run(tiny_config(tmp_path))  # would overwrite the finished run
    with pytest.raises(CheckpointError, match="different config"):
        train_run(tiny_config(tmp_path, "resume=true", "train.optimizer.lr=0.5"))


def test_intermediate_validation_reaches_callbacks(tmp_path):
    seen = []

    class Record(Callback):
        def on_validation(self, step, metrics):
            seen.append((step, metrics.miou))

    train_run(
        tiny_config(tmp_path, "train.val_interval=2", "eval.split=tune_holdout", "train.split=tune_train"),
        callbacks=[Record()],
    )
    assert [s for s, _ in seen] == [2, 4]  # the final evaluation is the run's result, not a callback


@dataclass
class _NanConfig(TermConfig):
    after: int = 3


@TERMS.register("_test_nan_after")
class _NanAfter(LossTerm):
    Config = _NanConfig
    needs_teacher = False

    def forward(self, student, teacher, labels=None, step=0):
        value = student.logits_low.float().mean() * 0
        return value + (float("nan") if step >= self.cfg.after else 0.0)


def test_nan_loss_stops_the_run_naming_step_and_term(tmp_path):
    cfg = tiny_config(tmp_path, "+method.terms.boom={term: _test_nan_after, after: 2}")
    with pytest.raises(NonFiniteLossError, match=r"'boom'.* step 3") as err:
        train_run(cfg)
    assert err.value.step == 3 and err.value.term == "boom"
    assert not (tmp_path / "run" / "result.json").exists()


def test_gradient_clipping_and_bf16_autocast_train(tmp_path, teachers_dir):
    cfg = tiny_config(
        tmp_path,
        "method=kd",
        f"teachers_dir={teachers_dir}",
        "train.grad_clip=0.5",
        "train.precision=bf16",
        "train.channels_last=true",
    )
    row = train_run(cfg)
    assert all(math.isfinite(h["loss"]) for h in row["history"] if "loss" in h)
    assert row["config"]["train"]["precision"] == "bf16"


def test_peak_memory_is_measured_per_run_not_per_process(tmp_path):
    # A large run, then a small one in one process (a fresh one, so that what the test session did
    # before does not set the floor): the small one must not report the large one's peak.
    code = f"""
import json, pathlib
from tests.conftest import tiny_config
from bench.engine.trainer import train_run
tmp = pathlib.Path({str(tmp_path)!r})
big = ["dataset.image_size=[192,192]", "train.batch_size=16", "eval.batch_size=4"]
rows = [train_run(tiny_config(tmp / name, *o))["cost"] for name, o in (("big", big), ("small", []))]
print(json.dumps(rows))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    big_row, small_row = json.loads(done.stdout.splitlines()[-1])
    assert big_row["peak_mem_kind"] == small_row["peak_mem_kind"] == "cpu_peak_rss_run"
    assert small_row["peak_mem_mb"] < big_row["peak_mem_mb"]
