"""A SegFormer MiT-B4 → MiT-B0 comparison on synthetic data, to the demo's table (tiny sizes).

Sized for a loaded 2-core machine: 8 training and 2 validation images of 32×32 (MiT's input
multiple), 2 steps of batch 2 for the teacher and every final, one 1-step trial per method, and
one torch thread (one worker runs everything in its own process, at torch's default threads): with
two threads on a busy machine torch's parallel kernels wait for each other (building MiT-B4 alone
took 132 s with two threads, 18 s with one, at a load average of 13 on 2 cores).
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TINY_PAIR = [
    "dataset.train_size=8",
    "dataset.val_size=2",
    "dataset.image_size=[32,32]",
    "train.iterations=2",
    "train.batch_size=2",
    "train.log_interval=1",
    "train.checkpoint_interval=0",
    "train.schedule.warmup_iters=0",
    "device=cpu",
]


def test_segformer_b4_to_b0_comparison_runs_to_a_table(tmp_path):
    pair = [
        "student=segformer_b0",
        "teacher=segformer_b4",
        "student.encoder_weights=null",
        "teacher.encoder_weights=null",
    ]
    budget = [
        "tune.trial_iterations=1",
        "tune.trials=1",
        "tune.repeats=1",
        "tune.final_seeds=1",
        "tune.workers=1",
    ]
    cmd = [sys.executable, "-m", "bench.demo", *TINY_PAIR, *pair, *budget]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "segformer_b0" in out.stdout + out.stderr and "segformer_b4" in out.stdout + out.stderr
    for method in ("baseline", "kd", "skd_pair", "ifvd"):
        assert f"\n{method:>8} " in out.stdout
    assert (tmp_path / "results" / "teachers" / "synthetic" / "segformer_b4.pt").is_file()
    finals = sorted(tmp_path.glob("results/finals/**/segformer_b0/**/result.json"))
    assert len(finals) == 4  # methods × 1 repeat × 1 seed
    assert (tmp_path / "results" / "tables" / "comparison.csv").is_file()
