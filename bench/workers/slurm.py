"""Sweep workers on a cluster scheduler: a Slurm job array through submitit (``launcher.name=slurm``).

Each array task is one sweep worker (``Work.work_on``: :func:`bench.tune.runner.work_on`) against the
study's shared storage, so the budget, leases and stale-trial handling are exactly those of local
workers. ``launcher.*`` sets the job: partition, account, GPUs, CPUs, memory, time limit, array
throttle, setup lines. submitit
writes one log per task under ``launcher.folder`` (``%j`` becomes ``<array job>_<task>``).

The storage URL (which may carry a password) does not go into the pickled job files: the jobs get
it from the environment (sbatch exports the submitting shell's environment), under
:data:`STORAGE_ENV`.

``launcher.name=submitit_local`` runs the same array with submitit's local executor (processes on
this machine): what the tests use where there is no Slurm.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config.overrides import Overrides
from bench.errors import BenchError, ConfigError
from bench.utils.logs import setup_logging
from bench.utils.signals import raise_on_sigterm
from bench.workers.processes import Worker, dismiss

if TYPE_CHECKING:
    from bench.config.schema import RunConfig
    from bench.workers.work import Work

log = logging.getLogger("bench")

STORAGE_ENV = "SEGKD_SWEEP_STORAGE"
POLL_SECONDS = 30.0


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "launcher.name=slurm needs submitit, which is not installed; install it with: "
            "pip install -e '.[slurm]'"
        ) from None
    return submitit


def job_count(cfg: RunConfig) -> int:
    return cfg.launcher.jobs or cfg.tune.workers


def sbatch_memory(gb: float) -> str:
    """``--mem`` for ``launcher.mem_gb``: sbatch takes whole numbers only (``0.5GB`` is refused)."""
    if gb <= 0:
        raise ConfigError(f"launcher.mem_gb={gb:g} must be positive")
    return f"{gb:g}GB" if float(gb).is_integer() else f"{math.ceil(gb * 1024)}MB"


def slurm_parameters(cfg: RunConfig, name: str) -> dict[str, Any]:
    """sbatch parameters (submitit's names) from ``launcher.*``."""
    launcher = cfg.launcher
    params: dict[str, Any] = {
        "job_name": f"segkd-{cfg.method.name}",
        "time": launcher.timeout_min,
        "cpus_per_task": launcher.cpus_per_task,
        "mem": sbatch_memory(launcher.mem_gb),
        "setup": list(launcher.setup),
        "comment": name,
        "array_parallelism": launcher.max_parallel or job_count(cfg),
        "stderr_to_stdout": True,  # one log per job
    }
    gpus = launcher.gpus_per_node
    n = cfg.tune.gpus_per_trial
    if n > 1:  # each job is one worker whose trials run on n GPUs
        if gpus not in (0, n):
            raise ConfigError(
                f"launcher.gpus_per_node={gpus} but tune.gpus_per_trial={n}: each job is one worker "
                f"training one trial at a time on {n} GPUs; leave launcher.gpus_per_node at 0 (it "
                f"follows tune.gpus_per_trial) or set it to {n}"
            )
        gpus = n
    if gpus:
        params["gpus_per_node"] = gpus
    if launcher.partition:
        params["partition"] = launcher.partition
    if launcher.account:
        params["account"] = launcher.account
    return params


def batch_script(cfg: RunConfig, name: str) -> str:
    """The sbatch script the Slurm launcher submits for this sweep (for checks and dry runs)."""
    from submitit.slurm.slurm import _make_sbatch_string  # submitit has no public accessor

    return _make_sbatch_string(
        command="python -u -m submitit.core._submit <folder>",
        folder=Path(cfg.launcher.folder),
        map_count=job_count(cfg),
        **slurm_parameters(cfg, name),
    )


def _executor(cfg: RunConfig, name: str) -> Any:
    submitit = _submitit()
    folder = cfg.launcher.folder
    if cfg.launcher.name == "slurm":
        if shutil.which("sbatch") is None:
            raise ConfigError(
                "launcher.name=slurm: sbatch not found; run on a Slurm login node, or use "
                "launcher.name=local (processes on this machine)"
            )
        executor = submitit.SlurmExecutor(folder=folder)
        executor.update_parameters(**slurm_parameters(cfg, name))
        return executor
    executor = submitit.LocalExecutor(folder=folder)
    executor.update_parameters(timeout_min=cfg.launcher.timeout_min)
    return executor


def _slurm_worker(work_on: Callable[[list[list[str]]], None], studies: list[list[str]], index: int) -> None:
    """One array task: one sweep worker over the studies (``work_on``: :func:`bench.tune.runner.work_on`)."""
    from bench.config.compose import load_config
    from bench.workers.multi_gpu import trial_gpus

    setup_logging()
    raise_on_sigterm()
    cfg = load_config(studies[0])
    if cfg.tune.gpus_per_trial > 1:  # the job's node, before any trial is claimed
        trial_gpus(cfg.device, cfg.tune.gpus_per_trial)
    storage = os.environ.get(STORAGE_ENV)
    work_on([Overrides(o).with_({"tune.storage": storage}).as_list() if storage else o for o in studies])


def run(work: Work, standby: Sequence[Worker] = ()) -> None:
    """Submit ``launcher.jobs`` (default ``tune.workers``) workers as one array over the studies
    (the repeats of one method); wait if asked. Standby processes on this machine are not used."""
    dismiss(standby)
    cfg, name = work.cfg, work.name
    n = job_count(cfg)
    studies = [
        [Overrides(overrides).without("tune.storage").as_list() for overrides in rotation]
        for rotation in work.rotations(n)
    ]
    if cfg.tune.storage:
        os.environ[STORAGE_ENV] = cfg.tune.storage  # inherited by sbatch / the local jobs, never pickled
    executor = _executor(cfg, name)
    jobs = executor.map_array(functools.partial(_slurm_worker, work.work_on), studies, range(n))
    for job in jobs:
        log.info("%s: job %s, log %s", name, job.job_id, job.paths.stdout)
    if not cfg.launcher.wait:
        return
    shown: dict[str, str] = {}
    try:
        while not all(job.done() for job in jobs):
            time.sleep(min(POLL_SECONDS, cfg.tune.heartbeat_interval))
            for study, line in work.status().items():
                if shown.get(study) != line:  # a line when something changed, not every poll
                    print(line, flush=True)
                    shown[study] = line
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        log.warning("%s: cancelled %d job(s); their trials go stale, replaced on resume", name, n)
        raise
    failed = []
    for job in jobs:
        try:
            job.result()
        except Exception as e:  # submitit re-raises the job's exception with its traceback
            last = str(e).strip().splitlines()[-1:] or [type(e).__name__]
            failed.append(f"job {job.job_id} ({last[0]}; log {job.paths.stdout})")
    if failed:
        raise BenchError("sweep jobs failed: " + "; ".join(failed) + ". Rerun the same command to resume")
