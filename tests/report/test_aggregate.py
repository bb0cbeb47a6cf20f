"""Aggregates across comparisons: rliable's IQM and probability of improvement, the stratified
bootstrap, pairing by repeat and seed, and the files `make report` writes from two comparisons on."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.report.__main__ import main as report_main
from bench.report.aggregate import (
    aggregate_table,
    count_comparisons,
    iqm,
    paired_runs,
    performance_profiles,
    stratified_interval,
)

from .test_report import _write


def _runs(rows):
    return pd.DataFrame.from_records(
        [
            {"dataset": d, "student": "tiny", "teacher": t, "method": m, "repeat": 0, "seed": s, "miou": v}
            for d, t, m, s, v in rows
        ]
    )


def _two_datasets(gain_a=(1.0, 2.0, 0.5), gain_b=(3.0, 3.0, 4.0)):
    rows = []
    for dataset, base, gains in (("synthetic32", 40.0, gain_a), ("synthetic64", 60.0, gain_b)):
        for seed, g in enumerate(gains):
            rows.append((dataset, None, "baseline", seed, base + seed))
            rows.append((dataset, "big", "kd", seed, base + seed + g))
    return _runs(rows)


def test_iqm_and_probability_of_improvement_by_hand():
    paired = paired_runs(_two_datasets())
    assert count_comparisons(paired) == 2
    row = aggregate_table(paired, reps=200).iloc[0]
    deltas = [1.0, 2.0, 0.5, 3.0, 3.0, 4.0]
    assert row.iqm_delta == pytest.approx(stats.trim_mean(deltas, 0.25))  # rliable's IQM: 25% trimmed
    pct = [100 * d / 41 for d in (1.0, 2.0, 0.5)] + [100 * d / 61 for d in (3.0, 3.0, 4.0)]
    assert row.iqm_delta_pct == pytest.approx(stats.trim_mean(pct, 0.25))
    # task a: kd (41, 43, 42.5) vs baseline (40, 41, 42): 7 of 9 pairs won, one tie (41 vs 41) → 7.5/9;
    # task b: kd (63, 64, 66) vs (60, 61, 62): all 9 won
    assert row.p_improve == pytest.approx((7.5 / 9 + 1) / 2)
    for col in ("iqm_delta", "iqm_delta_pct", "p_improve"):
        assert row[f"{col}_ci_low"] <= row[col] <= row[f"{col}_ci_high"]
    assert (
        row.comparisons == 2 and row.runs == 6 and row.tasks == "synthetic32/tiny/big; synthetic64/tiny/big"
    )


def test_the_bootstrap_is_stratified_by_task():
    """Δ constant within each task (1 and 3): resampling within tasks always keeps three of each, so the
    IQM never moves; a bootstrap that pooled the runs would draw e.g. six 3s and widen the interval."""
    tasks = [np.array([1.0, 1.0, 1.0]), np.array([3.0, 3.0, 3.0])]
    low, high = stratified_interval([tasks], iqm, reps=300)
    assert low[0] == high[0] == pytest.approx(2.0)
    pooled = np.concatenate(tasks)
    rng = np.random.default_rng(0)
    draws = [iqm([pooled[rng.integers(0, 6, 6)]]) for _ in range(300)]
    assert np.ptp(draws) > 1  # the unstratified bootstrap would not be constant


def test_runs_pair_by_repeat_and_seed_and_unpaired_runs_are_left_out():
    runs = _two_datasets()
    extra = _runs([("synthetic32", "big", "kd", 9, 99.0)])  # no baseline seed 9
    paired = paired_runs(pd.concat([runs, extra], ignore_index=True))
    assert paired["kd"][("synthetic32", "tiny", "big")].method.tolist() == [41.0, 43.0, 42.5]
    r1 = runs.assign(repeat=1, miou=runs["miou"] + 100)  # repeat 1 pairs with repeat 1 only
    both = paired_runs(pd.concat([runs, r1], ignore_index=True))["kd"][("synthetic32", "tiny", "big")]
    assert both.delta.tolist() == [1.0, 2.0, 0.5, 1.0, 2.0, 0.5]


def test_performance_profile_counts_runs_above_each_threshold():
    paired = paired_runs(_two_datasets())
    taus = np.array([-1.0, 0.0, 3.0, 100.0])
    profile, low, high = performance_profiles(paired, taus, reps=100)["kd"]
    pct = np.array([100 * d / 41 for d in (1.0, 2.0, 0.5)] + [100 * d / 61 for d in (3.0, 3.0, 4.0)])
    np.testing.assert_allclose(profile, [(pct > t).mean() for t in taus])
    assert np.all(low <= profile + 1e-12) and np.all(profile <= high + 1e-12)


def test_make_report_writes_the_aggregate_from_two_comparisons_only(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    for root, datasets in ((one, ["synthetic32"]), (two, ["synthetic32", "synthetic64"])):
        for dataset in datasets:
            for seed, (b, k) in enumerate([(70.0, 71.0), (71.0, 73.0), (72.0, 72.5)]):
                study = f"{dataset}/tiny/{{}}/{{}}/trials4"
                _write(
                    root, "baseline", None, seed, b, study=study.format("None", "baseline"), dataset=dataset
                )
                _write(root, "kd", "big", seed, k, study=study.format("big", "kd"), dataset=dataset)
    out = tmp_path / "out1"
    assert report_main(["--finals", str(one), "--out", str(out)]) == 0
    assert not list(out.rglob("aggregate.*"))  # one comparison: nothing to aggregate
    out = tmp_path / "out2"
    assert report_main(["--finals", str(two), "--out", str(out)]) == 0
    table = pd.read_csv(out / "tables" / "aggregate.csv")
    assert list(table["method"]) == ["kd"] and table["comparisons"].tolist() == [2]
    assert table["iqm_delta"].iloc[0] == pytest.approx(stats.trim_mean([1, 2, 0.5] * 2, 0.25))
    for ext in ("md", "tex"):
        assert (out / "tables" / f"aggregate.{ext}").is_file()
    assert (out / "figures" / "aggregate.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "figures" / "aggregate.pdf").read_bytes()[:5] == b"%PDF-"
    assert f"wrote {out / 'tables' / 'aggregate.csv'}" in capsys.readouterr().out
