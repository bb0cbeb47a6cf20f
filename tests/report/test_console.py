"""What `make report` shows and draws (issue 26, cases 5 and 6): a block per comparison within the
terminal's width; figures per budget, never an empty frame."""

from __future__ import annotations

import json
import warnings

import pandas as pd

from bench.report.__main__ import main as report_main
from bench.report.console import console_tables

from .test_report import _write


def _student(root, study: str, student: str) -> None:
    """Make the rows of ``study`` (written by ``_write``) another student's."""
    for path in (root / study).rglob("result.json"):
        row = json.loads(path.read_text())
        row["student"] = student
        path.write_text(json.dumps(row))


def test_two_comparisons_are_two_blocks_named_by_dataset_student_teacher(tmp_path, capsys, monkeypatch):
    for student in ("tiny", "small"):
        for seed in range(3):
            for method, teacher, miou in (("baseline", None, 70.0 + seed), ("kd", "big", 71.0 + seed)):
                study = f"synthetic/{student}/{teacher}/{method}/trials4"
                _write(tmp_path, method, teacher, seed, miou, study=study)
                _student(tmp_path, study, student)
    monkeypatch.setenv("COLUMNS", "100")
    assert report_main(["--finals", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    table = out.split("wrote ")[0]
    assert "synthetic · tiny ← big · budget trials4" in table
    assert "synthetic · small ← big · budget trials4" in table
    assert max(len(line) for line in table.splitlines()) <= 100
    blocks = table.split("synthetic · ")[1:]
    assert all(sum(line.startswith("baseline") for line in b.splitlines()) == 1 for b in blocks)


def test_a_narrow_terminal_leaves_out_the_last_columns_and_says_which():
    table = pd.DataFrame(
        [
            {"dataset": "ade20k", "student": "r18", "teacher": "r101", "method": "baseline", "trials": 20},
            {
                "dataset": "ade20k",
                "student": "r18",
                "teacher": "r101",
                "method": "kd",
                "trials": 20,
                "delta": 1.5,
            },
        ]
    )
    text = console_tables({"trials20": table}, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "not shown at this width:" in text and "ade20k · r18 ← r101 · budget trials20" in text


def test_figures_are_per_budget_and_a_budget_without_baseline_draws_no_empty_frame(tmp_path, capsys):
    """The largest budget (4) has finals of kd only: its gaps figure used to be an empty frame that
    replaced the real comparison's (budget 2), with a blank Δ panel and an empty legend."""
    for trials in (2, 4):
        budget = {"budget": {"kind": "trials", "trials": trials, "seconds": None}}
        for seed in range(3):
            methods = [("kd", "big", 71.0 + seed)] + (
                [("baseline", None, 70.0 + seed)] if trials == 2 else []
            )
            for method, teacher, miou in methods:
                study = f"synthetic/tiny/{teacher}/{method}/trials"
                folder = f"{study}/trials{trials}"
                _write(
                    tmp_path, method, teacher, seed, miou, trials, study=study, folder=folder, tuning=budget
                )
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert report_main(["--finals", str(tmp_path), "--out", str(out), "--budgets", "2,4"]) == 0
    assert not [w for w in caught if "No artists with labels" in str(w.message)]
    figures = out / "figures"
    for name in ("gaps", "tuning_curves", "budget_curves"):
        assert (figures / f"{name}_trials2.png").is_file() and (figures / f"{name}.png").is_file()
    assert not (figures / "gaps_trials4.png").exists()
    assert (figures / "gaps.png").read_bytes() == (figures / "gaps_trials2.png").read_bytes()
    assert "figure gaps_trials4: not drawn, no KD method compared with a baseline" in capsys.readouterr().out
