"""The published protocol on demand: CIRKD's precision, ``eval.select`` and what a row records."""

from __future__ import annotations

import pytest
import torch

from bench.config.compose import load_config
from bench.engine.trainer import Trainer, train_run
from bench.evaluation import Metrics

from ..conftest import CrashAt, tiny_config


def test_protocol_cirkd_trains_and_evaluates_in_fp32_with_bf16_one_override_away():
    cfg = load_config(["dataset=cityscapes", "protocol=cirkd"])
    assert cfg.train.precision == "fp32"  # the Cityscapes train preset alone: bf16
    assert load_config(["dataset=cityscapes"]).train.precision == "bf16"
    assert (
        load_config(["dataset=cityscapes", "protocol=cirkd", "train.precision=bf16"]).train.precision
        == "bf16"
    )
    assert cfg.eval.select == "last"  # the report's fair comparison unless asked otherwise


def test_every_row_records_its_precision_and_selection(tmp_path):
    row = train_run(tiny_config(tmp_path, "train.precision=bf16"))
    assert row["precision"] == "bf16"
    assert row["selection"] == {"rule": "last"}


def _scripted(monkeypatch, mious):
    """Trainer.validate returns ``mious`` in turn and remembers the student's weights at each call."""
    seen = []

    def validate(self):
        seen.append((self.step, {k: v.clone() for k, v in self.student.state_dict().items()}))
        miou = mious[len(seen) - 1]
        return Metrics(miou=miou, aacc=0.9, macc=miou, iou=[miou, float("nan")], acc=[miou, float("nan")])

    monkeypatch.setattr(Trainer, "validate", validate)
    return seen


def test_best_on_val_reports_the_best_of_the_validations_and_saves_its_weights(tmp_path, monkeypatch):
    seen = _scripted(monkeypatch, [0.30, 0.50, 0.40])
    cfg = tiny_config(tmp_path, "eval.select=best_on_val", "eval.select_interval=2")
    row = train_run(cfg)
    assert [step for step, _ in seen] == [2, 4, 6]  # every 2 steps, the last one included
    assert row["metrics"]["miou"] == 50.0 and row["metrics"]["iou"] == [50.0, None]  # rows: percent
    assert row["selection"] == {
        "rule": "best_on_val",
        "split": "val",
        "interval": 2,
        "validations": 3,
        "best_step": 4,
    }
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    for key, value in seen[1][1].items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
    assert any(not torch.equal(saved[k], v) for k, v in seen[2][1].items())  # not the last model


def test_best_on_val_validates_every_800_of_40k_steps_as_cirkd():
    from bench.engine.selection import select_interval

    over = ["dataset=cityscapes", "protocol=cirkd"]
    assert select_interval(load_config([*over, "eval.select=best_on_val"])) == 800  # 50 validations
    assert select_interval(load_config([*over, "eval.select=best_on_val", "eval.select_interval=100"])) == 100
    assert select_interval(load_config(over)) == 0  # last: no extra validation


def test_the_best_so_far_survives_a_resume(tmp_path, monkeypatch):
    seen = _scripted(monkeypatch, [0.60, 0.20, 0.30])
    over = ("eval.select=best_on_val", "eval.select_interval=2", "train.checkpoint_interval=2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_config(tmp_path, *over), callbacks=[CrashAt(3)]).fit()
    row = train_run(tiny_config(tmp_path, *over, "resume=true"))
    assert [step for step, _ in seen] == [2, 4, 6]
    assert row["metrics"]["miou"] == 60.0 and row["selection"]["best_step"] == 2  # percent
