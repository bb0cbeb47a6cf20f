"""A time-budget comparison on unequal compute, and pruned fractions that differ markedly, are named
in ``budget_check``; honest comparisons stay ``ok`` (issue 25 items 4 and 9, issue 28 item 5)."""

import pandas as pd

from bench.report.__main__ import main as report_main
from bench.report.compute_check import PROBE_RATIO, compute_problems
from bench.report.pruning import pruned_differs, pruning_check

from .test_report import _table, _write

TIME = {"budget": {"kind": "time", "trials": None, "seconds": 3600.0}}


def _compute(threads=1, probe=4.0, device="AMD EPYC", gpus=0):
    return {
        "device_name": [device],
        "gpus_per_trial": [gpus],
        "threads": [threads],
        "workers": [1],
        "probe_ms": probe,
        "step_time_ms": 70.0,
        "recorded": 4,
    }


def _finals(root, computes, budget=TIME, pruned=None, trials=4):
    for seed in range(2):
        for method, compute in computes.items():
            tuning = {"tune_seconds": 3600.0, "seconds_tolerance": 100.0, "trials": trials}
            if compute is not None:
                tuning["compute"] = compute
            if pruned:
                tuning["pruned"] = pruned[method]
            teacher = None if method == "baseline" else "big"
            _write(root, method, teacher, seed, 70.0 + seed, trials=trials, tuning=tuning, **budget)


def test_fault_a_time_budget_on_other_threads_or_a_loaded_core_read_ok(tmp_path):
    """The baseline on one thread of a loaded core, kd on four threads: equal seconds, unequal work."""
    _finals(
        tmp_path,
        {
            "baseline": _compute(threads=1, probe=12.0),
            "kd": _compute(threads=4, probe=4.0),
            "fitnet": _compute(threads=1, probe=12.0 / (PROBE_RATIO - 0.1)),  # the honest control
        },
    )
    table = _table(tmp_path)
    check = table.loc["kd"].budget_check
    assert "compute differs from the baseline's: threads 4 vs 1" in check
    assert "probe 4.0 ms vs 12.0 ms (×3.0" in check
    assert table.loc["fitnet"].budget_check == "ok"
    assert table.loc["baseline"].budget_check == "ok"


def test_another_device_or_gpu_count_is_named(tmp_path):
    _finals(
        tmp_path,
        {
            "baseline": _compute(device="NVIDIA A100", gpus=1),
            "kd": _compute(device="NVIDIA H100", gpus=4),
        },
    )
    check = _table(tmp_path).loc["kd"].budget_check
    assert "device NVIDIA H100 vs NVIDIA A100" in check and "GPUs per trial 4 vs 1" in check


def test_a_record_on_one_side_only_is_flagged_and_older_finals_on_both_are_not(tmp_path):
    assert compute_problems(None, None) == []
    assert "not recorded for the baseline's study" in compute_problems(_compute(), None)[0]
    assert "not recorded for this study" in compute_problems({}, _compute())[0]
    _finals(tmp_path, {"baseline": None, "kd": _compute()})
    assert "compute not recorded" in _table(tmp_path).loc["kd"].budget_check


def test_trial_budgets_record_compute_without_comparing_it(tmp_path):
    trials = {"budget": {"kind": "trials", "trials": 4, "seconds": None}}
    _finals(tmp_path, {"baseline": _compute(threads=1), "kd": _compute(threads=4)}, budget=trials)
    assert _table(tmp_path).loc["kd"].budget_check == "ok"


def test_fault_zero_against_sixty_percent_pruned_read_ok(tmp_path):
    """0 of 5 baseline trials pruned, 3 of 5 kd trials: budget_check named nothing."""
    trials = {"budget": {"kind": "trials", "trials": 5, "seconds": None}}
    _finals(
        tmp_path,
        {"baseline": _compute(), "kd": _compute(), "fitnet": _compute()},
        budget=trials,
        pruned={"baseline": 0, "kd": 3, "fitnet": 1},  # fitnet: one trial more, noise
        trials=5,
    )
    table = _table(tmp_path)
    assert "pruned 0.60 vs the baseline's 0.00 (3 of 5 vs 0 of 5" in table.loc["kd"].budget_check
    assert table.loc["fitnet"].budget_check == "ok"
    column = pruning_check(table.reset_index(drop=True))
    assert list(column) == ["ok", "ok", "pruned 0.60 vs the baseline's 0.00"]


def test_the_demos_pruned_fractions_are_noise_not_a_flag():
    """The demo: 4 trials per study, 2 repeats; the baseline pruned 1 of 4 per study, ifvd and
    skd_pair 2 of 4 (0.25 vs 0.50). One trial of four is the pruner's noise, per study or pooled."""
    assert not pruned_differs(2, 4, 1, 4)
    rows = [
        {"dataset": "synthetic", "student": "s", "teacher": "t", "method": m, "budget": "trials4",
         "pruned_frac": f, "trials": 4, "repeats": 2}
        for m, f in (("baseline", 0.25), ("ifvd", 0.5), ("kd", 0.25), ("skd_pair", 0.5))
    ]  # fmt: skip
    assert list(pruning_check(pd.DataFrame(rows))) == ["ok"] * 4
    assert pruned_differs(6, 10, 0, 10) and pruned_differs(0, 5, 3, 5)


def test_report_exits_and_prints_the_compute_flag(tmp_path, capsys):
    _finals(tmp_path / "finals", {"baseline": _compute(threads=1), "kd": _compute(threads=4)})
    assert report_main(["--finals", str(tmp_path / "finals"), "--out", str(tmp_path / "out")]) == 0
    warnings = capsys.readouterr().err
    flag = "WARNING [time3600s]: synthetic/tiny/big/kd: compute differs from the baseline's: threads 4 vs 1"
    assert flag in warnings
    csv = pd.read_csv(tmp_path / "out" / "tables" / "comparison.csv")
    assert "threads 4 vs 1" in csv.set_index("method").loc["kd", "budget_check"]
