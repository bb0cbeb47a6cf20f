"""`make demo` end to end on CPU-sized settings, as a user runs it (a fresh process in a fresh folder)."""

import subprocess
import sys

import pytest

from .conftest import TINY

pytestmark = pytest.mark.slow  # the whole pipeline, in worker processes


def test_demo_shares_its_work_among_workers_and_writes_every_output(tmp_path):
    """Two workers: the teacher trains in one process beside the baseline's tuning and finals, then
    the KD studies and their finals are shared by both; the table has every method and repeat."""
    tiny = [o for o in TINY if not o.startswith("progress=")]
    cmd = [sys.executable, "-m", "bench.demo", *tiny, "tune.trial_iterations=4", "tune.workers=2"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stderr
    assert log.index("teacher: training") < log.index("baseline done; waiting for the teacher")
    assert "final runs: 12 to train on 2 workers (this process and 1 more)" in log  # the KD methods' finals
    assert "[fontTools" not in log  # no font-subsetting chatter when the PDFs are written
    assert "segkd-bench demo: synthetic data" in out.stdout and ", 2 repeats" in out.stdout
    for method in ("baseline", "kd", "skd_pair", "ifvd"):
        assert f"\n{method:>8} " in out.stdout
    finals = sorted(tmp_path.glob("results/finals/**/result.json"))
    assert len(finals) == 4 * 2 * 2  # methods × repeats × seeds
    for name in ("gaps", "tuning_curves", "budget_curves"):
        assert (tmp_path / "results" / "figures" / f"{name}.pdf").is_file()
    assert (tmp_path / "results" / "tables" / "comparison.csv").is_file()
