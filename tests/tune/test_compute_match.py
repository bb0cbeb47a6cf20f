"""Compute-matched finals: iterations follow the measured step times; the report puts Δ at equal
iterations beside Δ at equal compute, each with its interval."""

import json
import math

import pandas as pd
import pytest

from bench.errors import ConfigError
from bench.final import main as final_main
from bench.report.__main__ import main as report_main
from bench.results import load_rows
from bench.tune.compute_match import matched_iterations, step_time, stretched
from bench.tune.finals import final_jobs, run_finals
from bench.tune.runner import run_sweep

from ..conftest import sweep_args


def test_matched_iterations_and_the_stretched_schedule():
    assert matched_iterations(6000, 100.0, 300.0) == 2000  # 3× slower: a third of the iterations
    assert matched_iterations(6000, 100.0, 50.0) == 12000  # cheaper than the baseline: more
    assert matched_iterations(2, 1.0, 1000.0) == 1
    with pytest.raises(ConfigError, match="positive"):
        matched_iterations(10, 0.0, 1.0)
    train = {
        "iterations": 6000,
        "schedule": {"warmup_iters": 600},
        "val_interval": 0,
        "checkpoint_interval": 3000,
    }
    assert stretched(train, 2000) == [
        "train.iterations=2000",
        "train.schedule.warmup_iters=200",
        "train.checkpoint_interval=1000",
    ]


@pytest.mark.slow
def test_a_method_three_times_slower_trains_a_third_of_the_iterations(
    tmp_path, teachers_dir, monkeypatch, capsys
):
    """Real tiny sweeps and finals; kd's measured step time is then recorded as 3× the baseline's
    (what a heavy KD term costs), and the compute-matched finals follow it."""
    monkeypatch.chdir(tmp_path)
    # finals of 12 iterations (kd: 4 at equal compute), trials of 4
    extra = ("tune.trials=2", "tune.final_seeds=3", "train.iterations=12", "tune.trial_iterations=4")
    args = sweep_args(tmp_path, teachers_dir, *extra)
    for method in ("baseline", "kd"):
        run_sweep([*args, f"method={method}"])
    run_finals(args)
    finals = tmp_path / "finals"
    rows = load_rows(finals)
    base_ms = sum(r["cost"]["step_time_ms"] for r in rows if r["method"] == "baseline") / 3
    for path in finals.rglob("result.json"):  # the measurement a 3× slower KD step would record
        row = json.loads(path.read_text())
        if row["method"] == "kd":
            row["cost"]["step_time_ms"] = 3 * base_ms
            path.write_text(json.dumps(row))
            _record_as_written(args, row, path)  # the report refuses rows edited after their final

    final_main([*args, "--compute-matched"])
    matched = load_rows(tmp_path / "results" / "finals_compute")
    assert sorted((r["method"], r["seed"]) for r in matched) == [("kd", 0), ("kd", 1), ("kd", 2)]
    for r in matched:
        assert r["cost"]["iterations"] == r["config"]["train"]["iterations"] == 4  # 12 / 3
        assert r["config"]["train"]["schedule"]["warmup_iters"] == 1  # 2 warm-up steps of 12, stretched: 2/3
        match = r["tuning"]["compute_matched"]
        assert match["reference_iterations"] == 12 and match["method_step_ms"] == pytest.approx(3 * base_ms)
        assert match["baseline_step_ms"] == pytest.approx(base_ms)

    out = tmp_path / "out"
    compute_dir = tmp_path / "results" / "finals_compute"
    assert (
        report_main(["--finals", str(finals), "--compute-finals", str(compute_dir), "--out", str(out)]) == 0
    )
    table = pd.read_csv(out / "tables" / "compute_matched.csv")
    (kd,) = table.itertuples()
    assert (kd.iterations, kd.matched_iterations, kd.pairs) == (12, 4, "3 seeds")
    assert kd.delta_iter != kd.delta_compute  # a third of the training: another verdict
    for col in ("delta_iter", "delta_compute"):
        low, high = getattr(kd, f"{col}_ci_low"), getattr(kd, f"{col}_ci_high")
        assert math.isfinite(low) and low <= getattr(kd, col) <= high
    printed = capsys.readouterr().out
    assert "Δ equal iterations" in printed and "Δ equal compute" in printed and "(4 its:" in printed

    # the guards: finals from two device kinds, or none at all, are no price
    jobs = [j for j in final_jobs(args) if j.study.endswith("/kd/trials")]
    row_path = jobs[0].output_dir / "result.json"
    row = json.loads(row_path.read_text())
    row["environment"]["device_name"] = "NVIDIA H100"
    row_path.write_text(json.dumps(row))
    with pytest.raises(ConfigError, match="several devices"):
        step_time(jobs)
    for j in jobs:
        (j.output_dir / "result.json").unlink()
    with pytest.raises(ConfigError, match="run `make final` first"):
        step_time(jobs)


def test_with_repeats_the_compute_table_pairs_repeat_means_and_lists_each_repeats_match():
    """The comparison table's model with repeats (paired repeat means, t over repeats), and the
    matched iterations of each repeat (they follow each repeat's own measured step times)."""
    from bench.report.compute import compute_table

    def run(method, repeat, seed, miou, match=None):
        tuning = {"compute_matched": match} if match else {}
        teacher = None if method == "baseline" else "big"
        return dict(dataset="s", student="t", teacher=teacher, method=method, budget="trials4",
                    repeat=repeat, seed=seed, miou=miou, tuning=tuning)  # fmt: skip

    match = {0: (27, 449.0), 1: (49, 395.5)}
    equal, matched = [], []
    for r, base in ((0, 20.0), (1, 22.0)):
        for seed in (0, 1):
            equal.append(run("baseline", r, seed, base + seed))
            equal.append(run("kd", r, seed, base + seed + 1 + r))  # Δ per repeat: 1, 2
            its, ms = match[r]
            m = {
                "iterations": its,
                "reference_iterations": 300,
                "baseline_step_ms": 40.0,
                "method_step_ms": ms,
            }
            matched.append(run("kd", r, seed, base + seed - 3 * (r + 1), m))  # Δ per repeat: −3, −6
    matched.append(run("kd", 0, 9, 99.0, m))  # a seed the baseline has no run of: left out
    (row,) = compute_table(pd.DataFrame(equal), pd.DataFrame(matched)).itertuples()
    assert row.pairs == "2 repeats" and row.matched_iterations == "27; 49"
    assert row.method_step_ms == "449.0; 395.5" and row.baseline_step_ms == 40.0
    assert row.delta_iter == pytest.approx(1.5) and row.delta_compute == pytest.approx(-4.5)
    # t over the 2 repeat means: Δ ± t_.975,1 · sd/√2, sd of (−3, −6) = 3/√2
    half = 12.706204736174707 * (3 / math.sqrt(2)) / math.sqrt(2)
    assert (row.delta_compute_ci_low, row.delta_compute_ci_high) == pytest.approx((-4.5 - half, -4.5 + half))


def _record_as_written(args, row, path):
    """Record the edited row's digest as its final would have (bench.tune.finals_digest)."""
    import optuna

    from bench.config.budget import Budget
    from bench.config.compose import load_config
    from bench.tune import study as st
    from bench.tune.finals_digest import record_digest

    tune = load_config([*args, "output_dir=unused"]).tune
    study = optuna.load_study(study_name=row["tuning"]["study"], storage=st.open_storage(tune))
    record_digest(study, path, Budget.from_dict(row["tuning"]["budget"]).label, row["seed"])
