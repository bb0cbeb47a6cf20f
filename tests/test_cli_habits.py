"""Command-line habits: make help, Hydra flags, fast --help, console scripts from a regular install."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs make and the entry points as subprocesses

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = ["bench.train", "bench.teacher", "bench.sweep", "bench.final", "bench.status", "bench.demo"]


def _run(*args: str, cwd: Path = ROOT, exe: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("target", [[], ["help"]])
def test_make_and_make_help_list_targets_and_variables(target):
    result = subprocess.run(["make", "-s", *target], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    for word in ("demo", "test", "baseline", "sweep", "final", "report", "DATASET", "TRIALS", "ARGS"):
        assert word in result.stdout
    assert "pip install" not in result.stdout  # bare `make` no longer runs setup


@pytest.mark.parametrize("flag", ["-m", "--multirun"])
def test_multirun_is_refused_with_a_pointer_to_make_sweep(flag):
    result = _run("-m", "bench.train", flag, "method=kd,ifvd")
    assert result.returncode == 2
    assert "make sweep" in result.stderr and "Traceback" not in result.stderr


def test_unknown_option_is_named():
    result = _run("-m", "bench.sweep", "--trials", "3")
    assert result.returncode == 2 and "--trials" in result.stderr and "Traceback" not in result.stderr


def _run_module(module: str, *args: str, heavy: tuple[str, ...]) -> subprocess.CompletedProcess:
    """``python -m module args`` in a fresh interpreter; its last line is ``HEAVY [...]``, the
    modules of ``heavy`` it imported on the way (the exit status goes to ``EXIT n``)."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = {[module, *args]!r}\n"
        f"try:\n    runpy.run_module('{module}', run_name='__main__')\n"
        "except SystemExit as e:\n    print('EXIT', e.code)\n"
        f"print('HEAVY', sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    return _run("-c", code)


# What only training needs: torchvision (which brings torch._dynamo), the trainer, smp/timm. Config
# commands (--cfg, a config error) need the schemas, which import torch, and nothing more.
TRAINING_ONLY = ("torchvision", "bench.engine.trainer", "bench.tune.runner", "segmentation_models_pytorch")


def test_hydra_cfg_job_prints_the_config_without_the_training_imports():
    result = _run_module("bench.train", "--cfg", "job", "method=kd", heavy=TRAINING_ONLY)
    assert result.returncode == 0, result.stderr
    assert "temperature" in result.stdout
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize("module", ["bench.train", "bench.sweep", "bench.final", "bench.demo"])
def test_a_config_error_is_reported_before_the_training_imports(module):
    result = _run_module(module, "train.lrr=0.1", heavy=TRAINING_ONLY)
    assert "EXIT 2" in result.stdout and "train.lrr" in result.stderr, result.stderr
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize("module", [*ENTRY_POINTS, "bench.report", "bench.visualize", "bench.reproduce"])
def test_help_imports_neither_torch_nor_hydra(module):
    # What makes --help slow is importing torch/smp (seconds) before parsing; check it is not imported.
    result = _run_module(module, "--help", heavy=("torch", "hydra", "segmentation_models_pytorch"))
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout
    assert "HEAVY []" in result.stdout


@pytest.mark.slow
def test_console_scripts_work_from_a_regular_install_outside_the_repository(tmp_path):
    """`pip install` (not editable) into a fresh venv: the scripts exist and find conf/ and sweeps/."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    wheels = tmp_path / "wheels"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for step in (
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            ".",
        ],
        [*pip, "install", "-q", "--no-deps", "--no-index", "--find-links", str(wheels), "segkd-bench"],
    ):
        done = subprocess.run(step, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert done.returncode == 0, done.stderr
    # The dependencies (torch, ...) come from this environment; the project itself from the new venv.
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    scripts = ("segkd-train", "segkd-teacher", "segkd-sweep", "segkd-final", "segkd-status", "segkd-demo")
    for script in scripts:
        result = _run("--help", cwd=outside, exe=str(venv / "bin" / script))
        assert result.returncode == 0, result.stderr
        assert "deeplabv3_r18" in result.stdout  # the config groups were found
    for script in ("segkd-report", "segkd-visualize"):
        assert _run("--help", cwd=outside, exe=str(venv / "bin" / script)).returncode == 0
    result = _run("--cfg", "method=kd", cwd=outside, exe=str(venv / "bin" / "segkd-train"))
    assert result.returncode == 0 and "temperature" in result.stdout, result.stderr
    where = _run(
        "-c",
        "import bench.paths as p; print(p.conf_dir()); print(p.sweeps_dir())",
        cwd=outside,
        exe=str(venv / "bin" / "python"),
    ).stdout.split()
    assert all(str(venv) in w for w in where), where
    assert (Path(where[1]) / "train" / "synthetic").is_dir()
