"""One unit: mIoU in percent in every output a user reads (issue 26 item 10).

The slow test walks what a tiny pipeline writes and prints — result rows, trackers, the Optuna study,
the sweep's and the finals' lines, ``make status``, the teacher checkpoint, the report's tables and
console, the fidelity summary — and ties each to a score recomputed from a saved model. The quick
tests read what older versions wrote in fractions (rows, teacher checkpoints, studies, checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import Trial, TrialState

from bench.errors import BenchError
from bench.results import RESULT_FILE, read_row
from bench.tune import study as st
from bench.tune.finals import study_summary
from bench.tune.runner import Sweep
from bench.utils.units import FRACTION, PERCENT, to_percent

from .conftest import sweep_args, tiny_config
from .report.test_report import _table, _write


@contextlib.contextmanager
def recorded(logger: str = "bench") -> Iterator[list[str]]:
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger(logger)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _recomputed(cfg, out: Path) -> dict[str, float]:
    """mIoU, aAcc and mAcc (%) of the model a run saved, evaluated afresh on its split (the
    evaluation's own unit is a fraction): the anchor of every check."""
    from bench.engine.trainer import Trainer

    trainer = Trainer(cfg)
    trainer.student.load_state_dict(torch.load(out / "model.pt", weights_only=True)["state_dict"])
    m = trainer.validate()
    return {"miou": 100 * m.miou, "aacc": 100 * m.aacc, "macc": 100 * m.macc}


def _assert_percent(row: dict, cfg, out: Path) -> float:
    """The row as written says percent and holds the recomputed scores; returns its mIoU."""
    on_disk = json.loads((out / RESULT_FILE).read_text())
    assert on_disk["metrics_unit"] == PERCENT
    expected = _recomputed(cfg, out)
    for key, value in expected.items():
        assert on_disk["metrics"][key] == pytest.approx(value, abs=1e-9), key
    assert row["metrics"]["miou"] == on_disk["metrics"]["miou"]
    return expected["miou"]


# ----------------------------------------------------------------------------- the slow walk
@pytest.mark.slow
def test_every_output_of_a_tiny_pipeline_is_in_percent(tmp_path, teachers_dir, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bench.fidelity import main as fidelity_main
    from bench.report.__main__ import main as report_main
    from bench.status import main as status_main
    from bench.teachers import read_teacher_meta
    from bench.train import main as train_main
    from bench.tune.finals import run_finals
    from bench.tune.runner import run_sweep

    # a training run: its row, its console line and its trackers (CSV here, TensorBoard and MLflow below)
    logged = ["train.val_interval=3"]
    cfg = tiny_config(tmp_path / "csv", "logger=csv", *logged)
    with recorded() as lines:
        train_main([*_overrides(tmp_path / "csv"), "logger=csv", *logged])
    row = read_row(Path(cfg.output_dir) / RESULT_FILE)
    miou = _assert_percent(row, cfg, Path(cfg.output_dir))
    assert any(f"mIoU {miou:.2f}" in line for line in lines), lines
    frame = pd.read_csv(Path(cfg.output_dir) / "logs" / "metrics.csv")
    wide = frame.pivot(index="step", columns="key", values="value")
    assert wide.loc[6, "val/miou"] == pytest.approx(miou)
    (during,) = [h["val_miou"] for h in row["history"] if "val_miou" in h]
    assert wide.loc[3, "val/miou_during_training"] == pytest.approx(during)

    tb = tiny_config(tmp_path / "tb", "logger=tensorboard", f"logger.dir={tmp_path / 'tbdir'}", *logged)
    from bench.engine.trainer import train_run

    tb_row = train_run(tb)
    (run_dir,) = (tmp_path / "tbdir").glob("*/*/*/*/*")
    events = EventAccumulator(str(run_dir))
    events.Reload()
    tb_miou = _assert_percent(tb_row, tb, Path(tb.output_dir))
    assert events.Scalars("val/miou")[0].value == pytest.approx(tb_miou, abs=1e-4)  # float32
    (tb_during,) = [h["val_miou"] for h in tb_row["history"] if "val_miou" in h]
    assert events.Scalars("val/miou_during_training")[0].value == pytest.approx(tb_during, abs=1e-4)

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ml = tiny_config(tmp_path / "ml", "logger=mlflow", f"logger.tracking_uri={uri}", *logged)
    ml_row = train_run(ml)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("segkd-bench").experiment_id])
    assert run.data.metrics["val/miou"] == pytest.approx(_assert_percent(ml_row, ml, Path(ml.output_dir)))
    assert run.data.metrics["val/aacc"] == pytest.approx(ml_row["metrics"]["aacc"])

    # the teacher: its checkpoint's metrics and its run's row
    # (the fixture trains the full-data teacher first, as run/0, then the tuning teachers)
    teacher_row = read_row(teachers_dir.parent / "run" / "0" / RESULT_FILE)
    (full,) = [p for p in teachers_dir.glob("*/*.pt") if ".tune-" not in p.name]
    meta = read_teacher_meta(full)
    assert meta["metrics_unit"] == PERCENT and meta["metrics"]["miou"] == teacher_row["metrics"]["miou"]

    # sweeps: the study's values, intermediate values, the sweep's lines, the trial rows
    args = sweep_args(
        tmp_path,
        teachers_dir,
        "tune.trials=2",
        "tune.final_seeds=1",
        "tune.pruner=median",
        "tune.val_interval=3",
    )
    capsys.readouterr()
    sweeps = {m: run_sweep([*args, f"method={m}"]) for m in ("baseline", "kd")}
    printed = capsys.readouterr().out
    for method, sweep in sweeps.items():
        assert sweep.study.user_attrs[st.VALUE_UNIT] == PERCENT
        for trial in sweep.study.trials:
            trial_row = json.loads(
                (tmp_path / "trials" / sweep.name / f"trial_{trial.number:04d}" / RESULT_FILE).read_text()
            )
            assert trial_row["metrics_unit"] == PERCENT
            assert trial.value == trial_row["metrics"]["miou"]
            assert list(trial.intermediate_values.values()) == pytest.approx(
                [h["val_miou"] for h in trial_row["history"] if "val_miou" in h]
            )
            assert re.search(rf"\[{method}\] trial +{trial.number} COMPLETE +{trial.value:.2f} ", printed), (
                printed
            )
        assert f"| best {sweep.study.best_value:.2f} (#{sweep.study.best_trial.number})" in printed
    status_main([f"tune.studies_dir={tmp_path / 'studies'}"])
    status = capsys.readouterr().out
    for sweep in sweeps.values():
        assert f"{sweep.study.best_value:.2f} (#{sweep.study.best_trial.number})" in status, status

    # finals: the rows' scores and tuning facts, the finals' lines
    with recorded() as lines:
        run_finals(args)
    finals = {r["method"]: r for r in map(read_row, sorted((tmp_path / "finals").rglob(RESULT_FILE)))}
    for method, r in finals.items():
        study = sweeps[method].study
        tuning = r["tuning"]
        assert r["metrics_unit"] == PERCENT and "converted_from" not in r
        assert tuning["holdout_miou"] == study.best_value
        assert tuning["holdout_values"] == [t.value for t in study.trials]
        assert tuning["best_so_far"] == [max(t.value for t in study.trials[: k + 1]) for k in range(2)]
        assert any(f"val mIoU {r['metrics']['miou']:.2f}" in line for line in lines), lines
    assert finals["kd"]["tuning"]["teacher_miou"] == teacher_row["metrics"]["miou"]
    seed0 = next(p.parent for p in (tmp_path / "finals").rglob(RESULT_FILE) if "/baseline/" in str(p))
    _assert_percent(finals["baseline"], _final_config(finals["baseline"]), seed0)

    # the report: tables, curves and the console
    assert (
        report_main(["--finals", str(tmp_path / "finals"), "--out", str(tmp_path), "--resamples", "200"]) == 0
    )
    console = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "tables" / "comparison.csv").set_index("method")
    for method, r in finals.items():
        assert table.loc[method, "miou_mean"] == pytest.approx(r["metrics"]["miou"])
        assert table.loc[method, "holdout_miou"] == pytest.approx(r["tuning"]["holdout_miou"])
        assert f"{r['metrics']['miou']:.2f}" in console
    assert table.loc["kd", "teacher_miou"] == pytest.approx(teacher_row["metrics"]["miou"])
    curves = pd.read_csv(tmp_path / "tables" / "budget_curves.csv").set_index(["method", "k"])
    for method, sweep in sweeps.items():  # the expected best of all trials is their best
        assert curves.loc[(method, 2), "expected_unbiased"] == pytest.approx(sweep.study.best_value)

    # the fidelity summary: tuning and final scores
    fidelity_main([*args, "method=baseline", "tune.fidelity_k=1", f"tune.fidelity_dir={tmp_path / 'fid'}"])
    summary = json.loads(next((tmp_path / "fid").rglob("fidelity.json")).read_text())
    assert summary["scores_unit"] == PERCENT
    values = {t.number: t.value for t in sweeps["baseline"].study.trials}
    for number, s in summary["trials"].items():
        assert s["tuning"] == values[int(number)]
        fid_row = read_row(next((tmp_path / "fid").rglob(f"trial_{int(number):04d}/{RESULT_FILE}")))
        assert s["final"] == fid_row["metrics"]["miou"]
        assert fid_row["tuning"]["fidelity"]["tuning_score"] == s["tuning"]


def _overrides(tmp: Path) -> list[str]:
    from .conftest import TINY

    return [*TINY, f"output_dir={tmp / 'run'}", f"teachers_dir={tmp / 'teachers'}"]


def _final_config(row: dict):
    """The RunConfig a final ran with (its resolved config, as the row stores it)."""
    from bench.config.compose import validate

    return validate(row["config"])


# ----------------------------------------------------------------------------- older outputs
def _as_percent_row(path: Path) -> None:
    """Rewrite a hand-made row (fractions, no unit: an older version's) as this version writes it."""
    row = json.loads(path.read_text())
    row["metrics"]["miou"] *= 100
    t = row["tuning"]
    for key in ("holdout_miou", "literature_default_miou", "teacher_miou"):
        t[key] = None if t[key] is None else 100 * t[key]
    for key in ("best_so_far", "holdout_values"):
        t[key] = [None if v is None else 100 * v for v in t[key]]
    row["metrics_unit"] = PERCENT
    path.write_text(json.dumps(row))


def test_the_report_reads_rows_in_fractions_and_in_percent_alike(tmp_path):
    old, new, mixed = tmp_path / "old", tmp_path / "new", tmp_path / "mixed"
    for root in (old, new, mixed):
        for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 73.0), (72.0, 72.5)]):
            _write(root, "baseline", None, seed, b)
            _write(root, "kd", "big", seed, k, curve=(0.3, 0.3, 0.3, 0.5))
    for path in new.rglob(RESULT_FILE):
        _as_percent_row(path)
    for path in mixed.rglob("seed1/" + RESULT_FILE):  # one seed of each method rewritten
        _as_percent_row(path)
    for path in (p for p in old.rglob(RESULT_FILE) if "kd" in str(p)):
        row = json.loads(path.read_text())
        path.write_text(json.dumps({**row, "metrics_unit": FRACTION}))  # recorded, not implied
    tables = [_table(root).drop(columns=["study"]) for root in (old, new, mixed)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[2])
    assert tables[1].loc["kd", "miou_mean"] == pytest.approx((71 + 73 + 72.5) / 3)
    assert tables[1].loc["kd", "holdout_miou"] == pytest.approx(40.0)


def test_a_row_of_an_unknown_unit_is_one_line_naming_the_file(tmp_path):
    _write(tmp_path, "baseline", None, 0, 70.0)
    (path,) = tmp_path.rglob(RESULT_FILE)
    path.write_text(json.dumps({**json.loads(path.read_text()), "metrics_unit": "permille"}))
    with pytest.raises(BenchError) as err:
        read_row(path)
    assert str(path) in str(err.value) and "permille" in str(err.value) and "\n" not in str(err.value)


def test_units_convert_both_ways_and_refuse_an_unknown_one():
    assert to_percent(0.4123, FRACTION) == pytest.approx(41.23) and to_percent(41.23, PERCENT) == 41.23
    assert to_percent(None, FRACTION) is None
    with pytest.raises(ValueError, match="permille"):
        to_percent(1.0, "permille")


def test_a_teacher_checkpoint_saved_with_fractions_reads_in_percent(tmp_path):
    from bench.teachers import read_teacher_meta

    path = tmp_path / "t.pt"
    torch.save(
        {"state_dict": {}, "meta": {"metrics": {"miou": 0.25, "aacc": 0.5, "iou": [0.25, None]}}}, path
    )
    meta = read_teacher_meta(path)
    assert meta["metrics"] == {"miou": 25.0, "aacc": 50.0, "iou": [25.0, None]}
    assert meta["metrics_unit"] == PERCENT


def test_a_checkpoint_of_an_older_version_resumes_with_its_history_in_percent(tmp_path):
    from bench.engine.trainer import Trainer

    trainer = Trainer(tiny_config(tmp_path))
    state = trainer.state_dict()
    assert state["metrics_unit"] == PERCENT
    old = {k: v for k, v in state.items() if k != "metrics_unit"}
    old["history"] = [{"step": 3, "val_miou": 0.25}, {"step": 4, "loss": 1.0}]
    trainer.load_state_dict(old)
    assert trainer.history == [{"step": 3, "val_miou": 25.0}, {"step": 4, "loss": 1.0}]


class ToySweep(Sweep):
    """Trials that score a fixed percent value instantly (what a trained trial's row holds)."""

    scores = (31.5, 42.25, 38.0)

    def run_trial(self, trial: Trial) -> None:
        self._finish(trial, TrialState.COMPLETE, {"train_seconds": 1.0}, self.scores[trial.number])


def test_a_study_made_in_fractions_keeps_them_and_reads_in_percent(tmp_path, monkeypatch):
    from bench.config.compose import load_config

    args = sweep_args(tmp_path, None, "tune.trials=2")
    monkeypatch.setattr(st, "record_value_unit", lambda study: None)  # an older version made it
    old = ToySweep.open(args)
    old.run_worker()
    monkeypatch.undo()
    assert st.VALUE_UNIT not in old.study.user_attrs
    resumed = ToySweep.open([*args, "tune.trials=3"])  # this version tops it up
    resumed.run_worker()
    assert [t.value for t in resumed.study.trials] == pytest.approx([0.315, 0.4225, 0.38])  # one unit
    summary = study_summary(resumed.study, load_config([*args, "tune.trials=3"]).tune)
    assert summary["holdout_values"] == pytest.approx([31.5, 42.25, 38.0])
    assert summary["holdout_miou"] == pytest.approx(42.25) and summary["best_so_far"] == pytest.approx(
        [31.5, 42.25, 42.25]
    )


def test_a_new_study_records_percent(tmp_path):
    sweep = ToySweep.open(sweep_args(tmp_path, None, "tune.trials=2"))
    sweep.run_worker()
    assert sweep.study.user_attrs[st.VALUE_UNIT] == PERCENT
    assert [t.value for t in sweep.study.trials] == [31.5, 42.25]
    assert st.value_unit(optuna.create_study()) == FRACTION  # a study without the attribute


def test_every_score_of_a_row_in_fractions_is_converted_and_nothing_else():
    from bench.results import in_percent

    old = {
        "metrics": {"miou": 0.5, "aacc": 0.75, "macc": 0.625, "iou": [0.5, None], "acc": [0.25, None]},
        "history": [{"step": 2, "loss": 0.5}, {"step": 3, "val_miou": 0.125}],
        "tuning": {
            "holdout_miou": 0.5,
            "literature_default_miou": None,
            "teacher_miou": 0.75,
            "best_so_far": [None, 0.5],
            "holdout_values": [None, 0.5],
            "pruned": 1,
            "tune_seconds": 0.5,
            "fidelity": {"trial": 3, "tuning_score": 0.25},
        },
        "cost": {"train_seconds": 0.5},
    }
    new = in_percent(old)
    scores = {"miou": 50.0, "aacc": 75.0, "macc": 62.5, "iou": [50.0, None], "acc": [25.0, None]}
    assert new["metrics"] == scores
    assert new["history"] == [{"step": 2, "loss": 0.5}, {"step": 3, "val_miou": 12.5}]
    t = new["tuning"]
    assert (t["holdout_miou"], t["literature_default_miou"], t["teacher_miou"]) == (50.0, None, 75.0)
    assert t["best_so_far"] == t["holdout_values"] == [None, 50.0]
    assert (t["pruned"], t["tune_seconds"], new["cost"]) == (1, 0.5, {"train_seconds": 0.5})
    assert t["fidelity"] == {"trial": 3, "tuning_score": 25.0}
    assert new["metrics_unit"] == PERCENT and new["converted_from"] == FRACTION
    assert old["metrics"]["miou"] == 0.5 and old["tuning"]["fidelity"]["tuning_score"] == 0.25  # a copy
    assert in_percent(new) is new
