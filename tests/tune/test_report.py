"""The report on hand-made result rows: Δ, CI and p-value by hand, flags, files."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.report.__main__ import main as report_main
from bench.report.stats import paired_delta, undertuned
from bench.report.table import COLUMNS, comparison, final_runs

SETTINGS = {
    "budget": {"kind": "trials", "trials": 4, "seconds": None},
    "sampler": "tpe",
    "sampler_seed": 0,
    "pruner": "median",
    "pruner_startup_trials": 5,
    "pruner_warmup_steps": 0,
    "trial_iterations": 100,
    "val_interval": 25,
    "protocol_hash": "abc",
}


def _write(root, method, teacher, seed, miou, trials=4, curve=(0.3, 0.4, 0.4, 0.4), **settings):
    path = root / method / f"seed{seed}" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "dataset": "synthetic",
        "student": "tiny",
        "teacher": teacher,
        "method": method,
        "seed": seed,
        "metrics": {"miou": miou / 100},
        "cost": {"step_time_ms": 10.0 + seed, "peak_mem_mb": 100.0 + seed},
        "tuning": {
            "study": f"synthetic/tiny/{teacher}/{method}/trials4",
            "settings": {**SETTINGS, **settings},
            "trials": trials,
            "tune_seconds": 60.0,
            "holdout_miou": 0.4,
            "literature_default_miou": 0.3,
            "best_so_far": list(curve),
            "budget_met": True,
        },
    }
    path.write_text(json.dumps(row))


@pytest.fixture
def finals(tmp_path):
    for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 73.0), (72.0, 72.5)]):
        _write(tmp_path, "baseline", None, seed, b)
        _write(tmp_path, "kd", "big", seed, k, curve=(0.3, 0.3, 0.3, 0.5))  # improved in the last 20%
        _write(tmp_path, "fitnet", "big", seed, b + 0.5, trials=3)  # a smaller realised budget
    return tmp_path


def test_paired_delta_by_hand():
    # d = (1, 2, 0.5): mean 7/6; sd = sqrt(7/12); t = mean / (sd/√3) = √7; for 2 degrees of freedom the
    # two-sided p-value is 1 − t/√(t²+2) = 1 − √7/3.
    d = paired_delta({0: 71.0, 1: 73.0, 2: 72.5}, {0: 70.0, 1: 71.0, 2: 72.0}, n_resamples=20000)
    assert d.delta == pytest.approx(7 / 6)
    assert d.p_value == pytest.approx(1 - math.sqrt(7) / 3, rel=1e-9)
    # The bootstrap distribution of the mean of 3 draws from {1, 2, 0.5} (27 equally likely triples)
    # puts 1/27 ≈ 3.7% on each extreme (0.5 and 2.0), so the 2.5% / 97.5% percentiles are exactly those.
    means = sorted(np.mean(t) for t in itertools.product([1, 2, 0.5], repeat=3))
    assert (means[0], means[-1]) == (0.5, 2.0)
    assert (d.ci_low, d.ci_high) == (0.5, 2.0)


def test_paired_delta_pairs_by_seed_and_handles_degenerate_cases():
    assert paired_delta({0: 1.0, 5: 9.0}, {0: 0.0, 1: 4.0}).n == 1  # only seed 0 is shared
    same = paired_delta({0: 2.0, 1: 3.0}, {0: 1.0, 1: 2.0})
    assert (same.delta, same.ci_low, same.ci_high) == (1.0, 1.0, 1.0) and math.isnan(same.p_value)
    assert math.isnan(paired_delta({}, {0: 1.0}).delta)


def test_undertuned_flag():
    assert undertuned([0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.35])  # improved in the last 20%
    assert not undertuned([0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    assert undertuned([None, 0.2])  # the first complete trial came last: still searching
    assert undertuned([0.2]) and not undertuned([None, None])


def test_comparison_table(finals):
    table = comparison(final_runs(finals), n_resamples=2000)
    assert list(table.columns[: len(COLUMNS)]) == COLUMNS
    rows = {r.method: r for r in table.itertuples()}
    assert list(table["method"]) == ["baseline", "fitnet", "kd"]  # baseline first
    assert set(table["teacher"]) == {"big"}  # the baseline sits in the teacher's comparison
    assert rows["baseline"].delta == 0.0 and math.isnan(rows["baseline"].p_value)
    assert rows["kd"].delta == pytest.approx(7 / 6) and rows["kd"].p_value == pytest.approx(
        1 - math.sqrt(7) / 3
    )
    assert rows["kd"].miou_mean == pytest.approx(np.mean([71.0, 73.0, 72.5]))
    assert rows["kd"].miou_std == pytest.approx(np.std([71.0, 73.0, 72.5], ddof=1))
    assert rows["kd"].step_time_ms == pytest.approx(11.0) and rows["kd"].peak_mem_mb == 102.0
    assert rows["kd"].undertuned and not rows["baseline"].undertuned
    assert rows["kd"].budget_check == "ok"
    assert rows["fitnet"].budget_check == "3 trials vs the baseline's 4"


def test_different_settings_are_flagged(tmp_path):
    for seed in range(2):
        _write(tmp_path, "baseline", None, seed, 70.0)
        _write(tmp_path, "kd", "big", seed, 71.0, sampler_seed=1, trial_iterations=50)
    kd = comparison(final_runs(tmp_path)).set_index("method").loc["kd"]
    assert "sampler_seed differs" in kd.budget_check and "trial_iterations differs" in kd.budget_check


def test_missing_baseline_is_flagged(tmp_path):
    _write(tmp_path, "kd", "big", 0, 71.0)
    kd = comparison(final_runs(tmp_path)).iloc[0]
    assert math.isnan(kd.delta) and "no tuned baseline" in kd.budget_check


def test_report_writes_tables_and_figures(finals, tmp_path, capsys):
    out = tmp_path / "out"
    assert report_main(["--finals", str(finals), "--out", str(out), "--resamples", "500"]) == 0
    csv = pd.read_csv(out / "tables" / "comparison.csv")
    assert list(csv.columns[: len(COLUMNS)]) == COLUMNS and len(csv) == 3
    md = (out / "tables" / "comparison.md").read_text()
    assert md.startswith("**WARNING") and "| kd " in md
    assert "\\begin{tabular}" in (out / "tables" / "comparison.tex").read_text()
    for name in ("gaps.png", "tuning_curves.png"):
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    assert "fitnet: 3 trials vs the baseline's 4" in captured.err


def test_report_without_finals_is_a_clear_error(tmp_path, capsys):
    assert report_main(["--finals", str(tmp_path)]) == 2
    assert "make final" in capsys.readouterr().err
