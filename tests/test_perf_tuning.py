"""Smoke tests of the throughput benchmarks on CPU-sized settings (figures are not asserted)."""

import pytest

from bench.perf import step, trials

from .conftest import TINY_SYNTHETIC


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
    extra = [*TINY_SYNTHETIC, "train.batch_size=4", "tune.trial_iterations=4", "device=cpu"]
    wall, counted, window = trials.sweep_seconds(1, 2, extra)
    assert counted == 2 and 0 < window < wall  # the sweep's start and exit are outside the window
