"""Smoke tests of the throughput benchmarks on CPU-sized settings (figures are not asserted)."""

import os

import pytest

from bench.perf import step, trials

from ..conftest import TINY_SYNTHETIC


@pytest.mark.slow
def test_step_benchmark_writes_its_table(tmp_path):
    table = step.main(["--steps", "12", "--rounds", "1", "--out", str(tmp_path), *TINY_SYNTHETIC])
    assert [row[0] for row in table.rows] == ["fp32"]
    assert float(table.rows[0][1]) > 0 and float(table.rows[0][2]) > 0
    assert (tmp_path / "step_cpu.md").is_file() and (tmp_path / "step_cpu.csv").is_file()


@pytest.mark.slow
def test_trial_overhead_phases_add_up(tmp_path):
    extra = [*TINY_SYNTHETIC, "train.batch_size=4", "tune.trial_iterations=4", "device=cpu"]
    totals, wall, train = trials.overhead(2, extra)
    assert len(train) == 2 and totals["training steps"] == sum(train) > 0
    assert sum(totals[p] for p in trials.PHASES) <= totals["trial"] <= wall


def test_timed_phases_leave_the_patched_methods_as_they_were(tmp_path):
    """Sweep.open is a classmethod: restored as a bound method of Sweep, a subclass's open would
    build a plain Sweep (the toy sweeps of tests/tune/test_prefix.py trained for real after this)."""
    from collections import defaultdict

    from bench.tune.runner import Sweep

    class Sub(Sweep):
        pass

    before = dict(vars(Sweep))
    with trials._timed(Sweep, "open", defaultdict(float), "open study"):
        pass
    assert dict(vars(Sweep)) == before and Sub.open.__self__ is Sub


@pytest.mark.slow
def test_sweep_timing_reads_the_trial_window_from_the_study():
    """The reference's form (two pinned one-worker sweeps, one CPU each): every sweep's trials are
    counted, and the window spans them all but not the sweeps' start and exit."""
    extra = [*TINY_SYNTHETIC, "train.batch_size=4", "tune.trial_iterations=4", "device=cpu"]
    pinned = min(2, len(os.sched_getaffinity(0)))
    wall, counted, window = trials.sweep_seconds(1, 2, extra, pinned=pinned)
    assert counted == 2 * max(pinned, 1) and 0 < window < wall


def test_pinned_sweeps_need_a_cpu_each():
    cpus = len(os.sched_getaffinity(0))
    message = f"{cpus + 1} pinned sweeps need as many CPUs; this process has {cpus}"
    with pytest.raises(ValueError, match=message):
        trials.sweep_seconds(1, 2, [], pinned=cpus + 1)


def test_scaling_rows_derive_the_reference_from_the_first_rows_fixed_time():
    """1 worker: 30 s start to exit, 24 s of trials (6 s outside); the reference's two pinned sweeps
    run 16 trials in a 25 s window, 16/25 against 8/24 trials per s = 1.92×; start to exit that
    makes (6 + 24) / (6 + 24 / 1.92) = 30 / 18.5 = 1.62×. Medians over rounds, counts as run."""
    runs = {
        "1": [(30.0, 8, 24.0), (31.0, 8, 25.0), (29.0, 8, 23.0)],
        "2": [(20.0, 8, 15.0), (20.0, 8, 15.0), (20.0, 8, 15.0)],
        "2 × 1 pinned (reference)": [(40.0, 16, 25.0), (41.0, 16, 25.0), (39.0, 16, 25.0)],
    }
    rows, fixed = trials.scaling_rows(runs, {"2 × 1 pinned (reference)"}, "1")
    assert fixed == 6.0
    assert rows[0] == ["1", "30.0", "8", "16.00", "1.00×", "24.0", "1.00×"]
    assert rows[1] == ["2", "20.0", "8", "24.00", "1.50×", "15.0", "1.60×"]
    assert rows[2] == ["2 × 1 pinned (reference)", "—", "16", "—", "1.62× (derived)", "25.0", "1.92×"]
