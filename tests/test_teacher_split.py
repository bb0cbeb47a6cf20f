"""The tuning teacher (issue 25 item 7): trained without the tuning hold-out, picked by the trials,
recorded inside its checkpoint; a study whose trials used a teacher that saw the hold-out is
refused (the file at the tuning key) or flagged ``teacher saw hold-out`` (an explicit override, or a
study tuned before tuning teachers existed)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bench.config.compose import load_config
from bench.data import holdout_indices
from bench.errors import CheckpointError
from bench.report.table import comparison, final_runs
from bench.results import load_rows
from bench.teacher import main as teacher_main
from bench.teacher import part_overrides
from bench.teacher_split import FLAG, holdout_problem, make_record, report_problem, tuning_teacher
from bench.teachers import read_teacher_meta, teacher_path
from bench.tune.runner import run_sweep
from bench.utils.io import sha256_file

from .conftest import TINY, sweep_args
from .report.test_report import CLEAN_TUNING_TEACHER, HOLDOUT, _write

FULL = make_record("train", "synthetic", 24)
TUNE = make_record("tune_train", "synthetic", 24, 0.25, 0)


def test_a_teacher_of_the_whole_train_split_saw_the_hold_out():
    _, held = holdout_indices(24, 0.25, 0)
    assert (
        holdout_problem(FULL, HOLDOUT)
        == f"trained on {len(held)} of the study's {len(held)} hold-out images (split train)"
    )
    assert holdout_problem(TUNE, HOLDOUT) is None  # the honest tuning teacher


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "records no training split"),  # an old teacher, or one converted from another codebase
        (
            make_record("tune_train", "synthetic", 24, 0.25, 1),
            "hold-out images (split tune_train)",
        ),  # another hold-out
        (make_record("tune_train", "synthetic", 30, 0.25, 0), "a copy with 30 training images"),
        (make_record("tune_train", "other", 24, 0.25, 0), "dataset 'other'"),
        (
            {**FULL, "split": "tune_train", "holdout_size": 0.25, "holdout_seed": 0},
            "does not match",
        ),  # forged
        ({**TUNE, "holdout_seed": 1}, "does not match its own definition"),  # a record edited by hand
    ],
)
def test_records_that_do_not_show_a_clean_teacher_count_as_seen(record, expected):
    problem = holdout_problem(record, HOLDOUT)
    assert problem is not None and expected in problem


def test_the_report_recomputes_the_verdict_from_the_record():
    assert report_problem({"tuning_teacher": CLEAN_TUNING_TEACHER}) is None
    # a stored verdict of None does not help a record that saw the hold-out
    forged = {**CLEAN_TUNING_TEACHER, "trained_on": FULL, "problem": None}
    assert report_problem({"tuning_teacher": forged}).startswith(f"{FLAG} (trained on ")
    assert report_problem({}).startswith(f"{FLAG} (the study's trials used the full-data teacher")
    for damaged in (
        {**CLEAN_TUNING_TEACHER, "holdout": None},
        {**CLEAN_TUNING_TEACHER, "holdout": {"train_images": 24}},
    ):
        assert report_problem({"tuning_teacher": damaged}).startswith(FLAG)  # never ok, never a traceback


def _kd_rows(root: Path, **settings) -> None:
    for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 72.0), (72.0, 72.5)]):
        _write(root, "baseline", None, seed, b)
        _write(root, "kd", "big", seed, k, **settings)


def test_an_honest_comparison_stays_ok(tmp_path):
    _kd_rows(tmp_path)
    assert set(comparison(final_runs(tmp_path))["budget_check"]) == {"ok"}


def test_a_study_tuned_with_the_whole_train_teacher_is_flagged(tmp_path):
    """The issue's case: the trials' teacher trained on the whole training split, hold-out included
    (before this change every KD study; its settings hold no tuning teacher). Read ok before."""
    _kd_rows(tmp_path / "old", tuning_teacher=None)
    _kd_rows(tmp_path / "override", tuning_teacher={**CLEAN_TUNING_TEACHER, "trained_on": FULL})
    for root in ("old", "override"):
        table = comparison(final_runs(tmp_path / root)).set_index("method")
        assert table.loc["kd"].budget_check.startswith(FLAG)
        assert table.loc["baseline"].budget_check == "ok"


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> Path:
    """Teachers trained by ``python -m bench.teacher`` (both parts) for the sweeps' hold-out."""
    root = tmp_path_factory.mktemp("teachers")
    teacher_main([*TINY, "dataset.holdout_size=0.25", f"teachers_dir={root}", f"output_dir={root / 'run'}"])
    return root


def test_make_teacher_trains_both_parts_each_recording_its_images(teachers):
    cfg = load_config([*TINY, "dataset.holdout_size=0.25", f"teachers_dir={teachers}"])
    full, tune = teacher_path(cfg), teacher_path(cfg, "tune_train")
    assert full.name == "deeplabv3_small.pt" and tune.name == "deeplabv3_small.tune-h0.25-s0.pt"
    assert read_teacher_meta(full)["trained_on"] == FULL
    assert read_teacher_meta(tune)["trained_on"] == TUNE
    assert sha256_file(full) != sha256_file(tune)  # two trainings, not one file twice


def test_teacher_parts_follow_the_repeats_hold_out_seeds():
    runs = part_overrides([*TINY, "tune.repeats=2"], "tune")
    seeds = {load_config(o).dataset.holdout_seed for o in runs}
    assert len(runs) == 2 and len(seeds) == 2 and all("train.split=tune_train" in o for o in runs)
    assert part_overrides(["tune.repeats=2"], "full") == [["tune.repeats=2"]]


def test_kd_trials_load_the_tuning_teacher_and_the_study_records_it(tmp_path, teachers):
    args = sweep_args(tmp_path, teachers, "method=kd", "tune.trials=1")
    sweep = run_sweep(args)
    record = sweep.study.user_attrs["settings"]["tuning_teacher"]
    assert record["problem"] is None and record["trained_on"] == TUNE
    (row,) = load_rows(tmp_path / "trials")
    assert Path(row["teacher_checkpoint"]["path"]).name == "deeplabv3_small.tune-h0.25-s0.pt"
    assert record["sha256"] == row["teacher_checkpoint"]["sha256"]


def test_the_full_teacher_under_the_tuning_key_is_refused(tmp_path, teachers):
    """Renaming a file does not make a clean tuning teacher: the record inside it says what it saw."""
    forged = tmp_path / "teachers"
    shutil.copytree(teachers, forged)
    shutil.copy(
        forged / "synthetic" / "deeplabv3_small.pt", forged / "synthetic" / "deeplabv3_small.tune-h0.25-s0.pt"
    )
    with pytest.raises(CheckpointError, match=r"saw the tuning hold-out \(trained on 6 of the study's 6"):
        run_sweep(sweep_args(tmp_path, forged, "method=kd", "tune.trials=1"))
    assert not (tmp_path / "trials").exists() or not list((tmp_path / "trials").rglob("result.json"))


def test_an_explicit_teacher_that_saw_the_hold_out_is_recorded_for_the_report(tmp_path, teachers):
    full = teachers / "synthetic" / "deeplabv3_small.pt"
    cfg = load_config(sweep_args(tmp_path, teachers, "method=kd", f"teacher.checkpoint={full}"))
    record = tuning_teacher(cfg)
    assert record["trained_on"] == FULL and "6 of the study's 6 hold-out images" in record["problem"]
    assert report_problem({"tuning_teacher": record}).startswith(FLAG)


def test_a_kd_sweep_without_its_tuning_teacher_names_the_command(tmp_path, teachers):
    only_full = tmp_path / "teachers" / "synthetic"
    only_full.mkdir(parents=True)
    shutil.copy(teachers / "synthetic" / "deeplabv3_small.pt", only_full)
    with pytest.raises(
        CheckpointError, match="make teacher DATASET=synthetic TEACHER=deeplabv3_small PART=tune"
    ):
        run_sweep(sweep_args(tmp_path, tmp_path / "teachers", "method=kd", "tune.trials=1"))


def test_a_wrong_part_is_one_clear_line(capsys, monkeypatch):
    from bench.teacher import cli

    monkeypatch.setattr(sys, "argv", ["bench.teacher", "--part=half"])
    with pytest.raises(SystemExit) as e:
        cli()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --part=half: choose one of both, full, tune (e.g. --part=tune)"
