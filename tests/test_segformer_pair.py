"""A SegFormer MiT-B4 → MiT-B0 comparison on synthetic data, to the demo's table (tiny sizes)."""

import subprocess
import sys

import pytest

from .conftest import TINY

pytestmark = pytest.mark.slow


def test_segformer_b4_to_b0_comparison_runs_to_a_table(tmp_path):
    tiny = [o for o in TINY if not o.startswith("progress=")]  # 32×32 images: a multiple of MiT's 32
    pair = [
        "student=segformer_b0",
        "teacher=segformer_b4",
        "student.encoder_weights=null",
        "teacher.encoder_weights=null",
    ]
    cmd = [sys.executable, "-m", "bench.demo", *tiny, *pair, "tune.trial_iterations=2", "tune.trials=1",
           "tune.repeats=1", "tune.final_seeds=1", "tune.workers=1"]  # fmt: skip
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "segformer_b0" in out.stdout + out.stderr and "segformer_b4" in out.stdout + out.stderr
    for method in ("baseline", "kd", "skd_pair", "ifvd"):
        assert f"\n{method:>8} " in out.stdout
    assert (tmp_path / "results" / "teachers" / "synthetic" / "segformer_b4.pt").is_file()
    finals = sorted(tmp_path.glob("results/finals/**/segformer_b0/**/result.json"))
    assert len(finals) == 4  # methods × 1 repeat × 1 seed
    assert (tmp_path / "results" / "tables" / "comparison.csv").is_file()
