"""The real-data path end to end on generated copies in the official layouts: teacher → baseline →
one KD method → finals → report, through the entry points a user runs (``python -m bench.<name>``,
what ``make teacher/baseline/sweep/final/report`` call), with sizes shrunk by overrides."""

from __future__ import annotations

import logging

import pytest

from bench import final, sweep, teacher
from bench.cli import run_cli
from bench.config.budget import Budget
from bench.perf.data import write_layout
from bench.report.__main__ import main as report_main

from .data.layouts import WRITERS

pytestmark = pytest.mark.slow

# What a user passes as ARGS="..." to try the pipeline on a small copy: tiny models, tiny crops, a few
# steps, every split size accepted.
SHRINK = [
    "student=deeplabv3_tiny",
    "teacher=deeplabv3_small",
    "dataset.allow_partial=true",
    "dataset.holdout_size=1",
    "train.iterations=3",
    "train.batch_size=2",
    "train.crop_size=[32,32]",
    "train.num_workers=0",
    "train.precision=fp32",
    "train.channels_last=false",
    "train.log_interval=1",
    "train.checkpoint_interval=0",
    "tune.trial_iterations=2",
    "tune.pruner=none",
    "device=cpu",
    "progress=false",
]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_teacher_baseline_method_finals_report(tmp_path, name, monkeypatch, capsys, caplog):
    root = write_layout(name, tmp_path / "data", train_images=3, val_images=2, size=(64, 96))
    monkeypatch.chdir(tmp_path)  # results/ of every command land here, as in a fresh clone
    args = [f"dataset={name}", f"dataset.root={root}", *SHRINK]
    run_cli(teacher.main, "teacher_run", "", args)
    assert (tmp_path / "results" / "teachers" / name / "deeplabv3_small.pt").is_file()
    for method in ("baseline", "kd"):
        run_cli(sweep.main, "run", "", [*args, f"method={method}", "tune.trials=2"])
    # `make final` with no selection: every stored study, under the budget it was tuned with and the
    # overrides of its sweep (dataset, root, shrunk sizes); on one layout `WORKERS=2`, whose second
    # worker starts (and imports) before anything is composed and takes one of the two runs
    workers = ["tune.workers=2"] if name == "voc" else []
    caplog.set_level(logging.INFO, logger="bench")
    run_cli(final.main, "run", "", ["tune.final_seeds=1", *workers])
    if workers:
        assert "final runs: 2 to train on 2 workers (this process and 1 more)" in caplog.text
    assert report_main(["--resamples", "50"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["baseline"], ["kd"])]
    assert [r[0] for r in rows] == ["baseline", "kd"]
    assert all(r[1:4] == ["trials", "2", "1"] for r in rows)  # budget kind, trials, seeds
    table = (tmp_path / "results" / "tables" / "comparison.csv").read_text().splitlines()
    assert len(table) == 3 and all(line.startswith(f"{name},deeplabv3_tiny,") for line in table[1:])


def test_final_selects_stored_studies_by_what_is_given():
    names = [
        "ade20k/deeplabv3_tiny/none/baseline/trials",
        "ade20k/deeplabv3_tiny/deeplabv3_small/ifvd/trials/r1",
        "ade20k/deeplabv3_r18/none/baseline/time",
        "voc/deeplabv3_r18/deeplabv3_r101/kd/trials",
        "voc/deeplabv3_r18/deeplabv3_r101/kd/trials20",  # named before budgets became prefixes: ignored
        "someone/else",
    ]
    every = final.study_groups(names, {}, None, None)
    assert every == [
        {"dataset": "ade20k", "student": "deeplabv3_r18", "teacher": None, "kind": "time"},
        {"dataset": "ade20k", "student": "deeplabv3_tiny", "teacher": "deeplabv3_small", "kind": "trials"},
        {"dataset": "voc", "student": "deeplabv3_r18", "teacher": "deeplabv3_r101", "kind": "trials"},
    ]
    assert final.study_groups(names, {"dataset": "ade20k"}, "ifvd", None) == [every[1]]
    assert final.study_groups(names, {}, None, "trials") == [every[1], every[2]]
    assert Budget.from_label("trials2").overrides() == ["tune.budget=trials", "tune.trials=2"]
    assert Budget.from_label("time3600s").overrides() == ["tune.budget=time", "tune.seconds=3600"]
    assert final.split_budgets_flag(["method=kd", "--budgets", "5,10"]) == (["method=kd"], "5,10")
    assert final.split_budgets_flag(["--budgets=600s"]) == ([], "600s")
