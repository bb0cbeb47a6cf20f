"""One run on two CPU processes (torchrun, gloo, synchronised BatchNorm) equals the one-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.engine.trainer import train_run

from ..conftest import TINY, tiny_config

ROOT = Path(__file__).resolve().parents[2]
# Dropout draws its masks from each rank's RNG: off, so that the two runs can be compared exactly.
SAME = [
    "train.batch_size=4",
    "student.aux_dropout=0.0",
    "+student.decoder_kwargs.decoder_aspp_dropout=0.0",
    "dataset.ignore_width=0",  # every rank then averages the task loss over as many pixels
    "train.deterministic=true",
    "seed=3",
]
TOLERANCE = 1e-4  # relative, on every logged loss; float sums reorder across ranks


@pytest.mark.slow
def test_two_processes_see_the_same_global_batches_as_one(tmp_path):
    one = train_run(tiny_config(tmp_path / "one", *SAME))
    out = tmp_path / "two" / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "bench.train", *TINY, *SAME, f"output_dir={out}", f"teachers_dir={tmp_path / 'teachers'}",
        ],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    two = json.loads((out / "result.json").read_text())
    losses_one = [h["loss"] for h in one["history"] if "loss" in h]
    losses_two = [h["loss"] for h in two["history"] if "loss" in h]
    assert len(losses_one) == len(losses_two) == 3
    assert torch.allclose(torch.tensor(losses_two), torch.tensor(losses_one), rtol=TOLERANCE, atol=0)
    # 1e-6 of a fraction, in percent
    assert two["metrics"]["miou"] == pytest.approx(one["metrics"]["miou"], abs=1e-4)
    assert two["metrics"]["aacc"] == pytest.approx(one["metrics"]["aacc"], abs=1e-4)
