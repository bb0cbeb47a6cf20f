"""Trials on several processes (``tune.gpus_per_trial``): torchrun / DDP, here on CPU with gloo."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from bench.config.compose import load_config
from bench.engine.callbacks import Callback
from bench.errors import ConfigError, DataError, MemoryLimitError, NonFiniteLossError
from bench.evaluation import Metrics
from bench.results import read_row
from bench.tune.runner import run_sweep
from bench.workers import multi_gpu
from bench.workers.multi_gpu import TorchrunTrial, TrialProcessError, check_gpus_per_trial
from bench.workers.slurm import slurm_parameters

from ..conftest import sweep_args, tiny_config
from ..engine.test_distributed import ROOT, SAME, TOLERANCE


def _processes() -> dict[int, tuple[int, bytes]]:
    """Live (not zombie) processes: pid → (parent pid, command line)."""
    out = {}
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            fields = dict(ln.split(":", 1) for ln in (proc / "status").read_text().splitlines() if ":" in ln)
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and not fields.get("State", "").strip().startswith("Z"):
            out[int(proc.name)] = (int(fields["PPid"]), cmdline)
    return out


def _leftovers(workdir: str) -> list[int]:
    """Processes whose command line names the trial's folder (torchrun's agent and its ranks)."""
    return [pid for pid, (_, cmdline) in _processes().items() if workdir.encode() in cmdline]


@pytest.mark.slow
def test_a_sweep_trial_on_two_processes_scores_as_on_one(tmp_path):
    """The same trial (same sampled values, global batch 4) on 1 and on 2 gloo processes."""
    rows, values = {}, {}
    for n in (1, 2):
        folder = tmp_path / f"p{n}"
        sweep = run_sweep(sweep_args(folder, None, "tune.trials=1", f"tune.gpus_per_trial={n}", *SAME))
        (trial,) = sweep.study.trials
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
        values[n] = trial.value
        rows[n] = read_row(folder / "trials" / sweep.name / "trial_0000" / "result.json")
    assert [rows[n]["environment"]["processes"] for n in (1, 2)] == [1, 2]
    losses = {n: torch.tensor([h["loss"] for h in rows[n]["history"] if "loss" in h]) for n in (1, 2)}
    assert len(losses[1]) == len(losses[2]) == 3
    assert torch.allclose(losses[2], losses[1], rtol=TOLERANCE, atol=0)
    assert values[2] == pytest.approx(values[1], abs=1e-4)  # the hold-out mIoU (%) the study records
    assert rows[2]["metrics"]["aacc"] == pytest.approx(rows[1]["metrics"]["aacc"], abs=1e-4)  # %


class Record(Callback):
    """The hooks a trial's callbacks see; prunes at the first validation when asked to."""

    def __init__(self, prune: bool = False) -> None:
        self.prune = prune
        self.steps: list[int] = []
        self.logged: list[int] = []
        self.validated: list[Metrics] = []
        self.ended: list[tuple[int, bool]] = []

    def on_step_end(self, step: int) -> None:
        self.steps.append(step)

    def on_log(self, step: int, entry: dict[str, float]) -> None:
        self.logged.append(step)

    def on_validation(self, step: int, metrics: Metrics) -> None:
        self.validated.append(metrics)
        if self.prune:
            raise optuna.TrialPruned(f"pruned at step {step}")

    def on_fit_end(self, step: int, row: dict | None) -> None:
        self.ended.append((step, row is not None))


@pytest.mark.slow
def test_the_worker_replays_every_hook_and_a_prune_stops_the_processes(tmp_path):
    cfg = tiny_config(tmp_path / "whole", "tune.gpus_per_trial=2", "train.val_interval=2")
    record = Record()
    row = TorchrunTrial(cfg, [record], "trial 0").fit()
    assert record.steps == list(range(1, 7)) and record.logged == [2, 4, 6]
    assert len(record.validated) == 2 and 0 <= record.validated[0].miou <= 1  # steps 2 and 4
    assert record.ended == [(6, True)] and row["environment"]["processes"] == 2

    # A prune at the first validation (a callback of the worker raising) stops torchrun and its ranks.
    cfg = tiny_config(
        tmp_path / "pruned", "tune.gpus_per_trial=2", "train.val_interval=2", "train.iterations=400"
    )
    record = Record(prune=True)
    trial = TorchrunTrial(cfg, [record], "trial 1")
    with pytest.raises(optuna.TrialPruned, match="step 2"):
        trial.fit()
    assert not _leftovers(trial.workdir), "processes of a stopped trial are still running"
    assert record.ended == [(record.steps[-1], False)]
    assert record.steps[-1] < 400 and trial.train_seconds > 0
    assert not (Path(cfg.output_dir) / "result.json").exists()


@pytest.mark.slow
def test_a_worker_killed_by_sigkill_takes_torchrun_and_its_ranks_along(tmp_path):
    args = sweep_args(tmp_path, None, "tune.trials=1", "tune.gpus_per_trial=2", "tune.trial_iterations=4000")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen([sys.executable, "-m", "bench.sweep", *args], env=env, cwd=ROOT)

    def ranks() -> tuple[int, list[int]] | None:
        procs = _processes()
        agents = [p for p, (ppid, cmd) in procs.items() if ppid == sweep.pid and b"multi_gpu\0agent" in cmd]
        ranks = [p for p, (ppid, _) in procs.items() if agents and ppid == agents[0]]
        return (agents[0], ranks) if len(ranks) == 2 else None

    deadline = time.monotonic() + 300
    while not (found := ranks()) and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.2)
    assert found, "torchrun and 2 ranks never ran"
    agent, rank_pids = found
    sweep.kill()
    sweep.wait()
    deadline = time.monotonic() + 120
    while (alive := set(_processes()) & {agent, *rank_pids}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, "torchrun or a rank outlived its killed worker"


@pytest.mark.slow
def test_an_error_in_a_rank_comes_back_as_its_own_class(tmp_path):
    """A global batch the processes cannot split: the ranks' ConfigError, not a generic crash."""
    cfg = tiny_config(tmp_path, "tune.gpus_per_trial=2", "train.batch_size=3")
    with pytest.raises(ConfigError, match=r"train.batch_size=3 .* divisible by the 2 processes"):
        TorchrunTrial(cfg, [], "trial 0").fit()


def test_rank_errors_are_rebuilt_with_their_details():
    nonfinite = {"type": "NonFiniteLossError", "message": "", "step": 7, "term": "kd", "rank": 1}
    e = multi_gpu._exception(nonfinite)
    assert isinstance(e, NonFiniteLossError) and (e.step, e.term) == (7, "kd")
    limit = {"type": "MemoryLimitError", "message": "term 'x' needs", "step": None, "term": "x", "rank": 0}
    e = multi_gpu._exception(limit)
    assert isinstance(e, MemoryLimitError) and e.term == "x"
    assert isinstance(multi_gpu._exception({**limit, "type": "OutOfMemoryError"}), torch.OutOfMemoryError)
    assert isinstance(multi_gpu._exception({**limit, "type": "DataError"}), DataError)
    other = multi_gpu._exception({**limit, "type": "ZeroDivisionError", "message": "boom"})
    assert isinstance(other, TrialProcessError) and str(other) == "rank 0: ZeroDivisionError: boom"


def test_gpus_per_trial_is_checked_with_the_keys_to_change(tmp_path):
    args = sweep_args(tmp_path, None)
    check_gpus_per_trial(load_config([*args, "tune.gpus_per_trial=2"]))  # CPU: two gloo processes
    with pytest.raises(ConfigError, match=r"train.batch_size=4 .* divisible by tune.gpus_per_trial=3"):
        check_gpus_per_trial(load_config([*args, "tune.gpus_per_trial=3"]))
    with pytest.raises(ConfigError, match=r"tune.gpus_per_trial=0 must be"):
        check_gpus_per_trial(load_config([*args, "tune.gpus_per_trial=0"]))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device is visible"):
            check_gpus_per_trial(load_config([*args, "tune.gpus_per_trial=2", "device=cuda:1"]))
    else:
        too_many = torch.cuda.device_count() + 1
        with pytest.raises(ConfigError, match=rf"tune.gpus_per_trial={too_many} needs GPUs 0"):
            multi_gpu.trial_gpus("cuda", too_many)


def test_the_slurm_job_gets_the_trials_gpus(tmp_path):
    args = sweep_args(tmp_path, None, "launcher.name=slurm", "tune.gpus_per_trial=2")
    assert slurm_parameters(load_config(args), "s")["gpus_per_node"] == 2  # follows
    assert slurm_parameters(load_config([*args, "launcher.gpus_per_node=2"]), "s")["gpus_per_node"] == 2
    with pytest.raises(ConfigError, match=r"launcher.gpus_per_node=4 but tune.gpus_per_trial=2"):
        slurm_parameters(load_config([*args, "launcher.gpus_per_node=4"]), "s")
