"""Fidelity of the tuning schedule: Spearman ρ with its interval, the choice of trials, the summary,
and the report's table and flags."""

import math

import pytest
from scipy import stats

from bench.fidelity import choose_trials
from bench.report.fidelity import (
    RHO_THRESHOLD,
    fidelity_flags,
    fidelity_table,
    spearman,
    summarise,
    write_fidelity_table,
)
from bench.utils.io import write_json_atomic


def test_spearman_and_its_fisher_interval_by_hand():
    tuning, final = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
    rho, low, high = spearman(tuning, final)
    assert rho == pytest.approx(stats.spearmanr(tuning, final).statistic)  # 1 − 6·6/(6·35) = 0.829
    half = 1.959964 * math.sqrt(1.06 / 3)
    assert (low, high) == pytest.approx(
        (math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half))
    )
    assert low < rho < high
    rho3, low3, _ = spearman([1, 2, 3], [1, 3, 2])  # three configurations: ρ without an interval
    assert rho3 == pytest.approx(0.5) and math.isnan(low3)
    perfect = spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert perfect[0] == pytest.approx(1.0) and perfect[2] <= 1.0


def test_choose_trials_takes_the_best_k_and_k_random_others():
    values = {0: 0.30, 1: 0.50, 2: 0.10, 3: 0.45, 4: 0.20, 5: 0.40, 6: 0.05}
    top, random = choose_trials(values, 2, seed=0)
    assert top == [1, 3] and len(random) == 2 and not set(random) & set(top)
    assert choose_trials(values, 2, seed=0) == (top, random)  # seeded
    assert choose_trials({0: 0.1, 1: 0.2}, 3, seed=0) == ([1, 0], [])  # fewer trials than 2k


def test_summary_flags_a_misranking_schedule_and_a_lost_best(tmp_path):
    # the short schedule ranks 0 > 1 > 2 > 3; the final schedule reverses it
    reversed_ = {0: (0.4, 0.1), 1: (0.3, 0.2), 2: (0.2, 0.3), 3: (0.1, 0.4)}
    s = summarise("synthetic/tiny/none/baseline/trials", 0, reversed_, top=[0, 1])
    assert s["rho"] == pytest.approx(-1.0) and s["misranks"] and not s["best_stays_best"]
    assert s["final_best_trial"] == 3 and s["threshold"] == RHO_THRESHOLD
    kept = summarise("synthetic/tiny/none/kd/trials", 0, {n: (v[0], v[0]) for n, v in reversed_.items()}, [0])
    assert kept["rho"] == pytest.approx(1.0) and not kept["misranks"] and kept["best_stays_best"]
    for summary in (s, kept):
        write_json_atomic(tmp_path / summary["study"] / "fidelity.json", summary)
    table = fidelity_table(tmp_path)
    assert sorted(table["study"]) == ["synthetic/tiny/none/baseline/trials", "synthetic/tiny/none/kd/trials"]
    lines = fidelity_flags(table)
    assert len(lines) == 2 and all(line.startswith("synthetic/tiny/none/baseline/trials") for line in lines)
    csv, md = write_fidelity_table(table, tmp_path / "tables")
    assert md.read_text().startswith("**WARNING") and csv.is_file()
    assert fidelity_table(tmp_path / "none").empty


def test_ties_at_the_tuning_schedule_are_flagged_not_read_as_fewer_configurations():
    """Every trial scored the same at the short schedule (as tiny trials do): ρ is undefined and the
    short schedule ranks nothing — flagged, with the reason, not reported as 'fewer than 4'."""
    from bench.report.fidelity import format_summary

    tied = {0: (0.2, 0.1), 1: (0.2, 0.3), 2: (0.2, 0.2), 3: (0.2, 0.4)}
    s = summarise("synthetic/tiny/none/baseline/trials", 0, tied, top=[0, 1])
    assert math.isnan(s["rho"]) and s["tuning_tied"] and s["misranks"]
    line = format_summary(s)
    assert "undefined: every configuration scored the same at the tuning schedule" in line
    assert "cannot tell the configurations apart" in line and "fewer than 4" not in line
    final_tied = summarise("x", 0, {n: (0.1 * n, 0.3) for n in range(4)}, top=[3])
    assert math.isnan(final_tied["rho"]) and not final_tied["misranks"]
    assert "at the final schedule" in format_summary(final_tied)
