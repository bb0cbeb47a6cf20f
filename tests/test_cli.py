"""Entry points: user errors print one line (no traceback) and exit 2."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # runs the entry points as subprocesses


def _run(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bench.train", "method=nope"), "kd"),  # lists the valid methods
        (("bench.train", "train.lrr=1"), "train.lrr"),
        (
            ("bench.train", "dataset=folder", "dataset.num_classes=3", "dataset.root=/no/such/dir"),
            "/no/such/dir",
        ),
    ],
)
def test_user_errors_are_one_message(args, message, tmp_path):
    result = _run(*args, f"output_dir={tmp_path}")
    assert result.returncode == 2
    assert "error:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_and_cfg():
    result = _run("bench.train", "--help")
    assert result.returncode == 0 and "deeplabv3_r18" in result.stdout and "kd" in result.stdout
    result = _run("bench.train", "--cfg", "method=kd")
    assert result.returncode == 0 and "temperature" in result.stdout
