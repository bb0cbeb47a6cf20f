"""Leases on running trials: heartbeats while a trial trains, and failing the trials of dead workers.

Optuna records heartbeats only inside ``Study.optimize``; segkd-bench drives Optuna with ask/tell, so
it keeps its own lease, the same on every storage (journal file, Redis journal, database):

- While a trial runs, a thread of its worker writes the trial's user attribute ``heartbeat`` (epoch
  seconds) every ``tune.heartbeat_interval`` seconds; on a database storage it also records Optuna's
  own heartbeat (``record_heartbeat``), so Optuna's tools see the trial alive.
- Before claiming a trial, every worker on any host fails as *stale* (uncounted, replaced) each
  RUNNING trial whose last heartbeat — or, before its first one, its start — is older than
  ``tune.heartbeat_grace`` seconds. ``ask`` stores the start time in the same write that creates the
  trial, so a worker killed between claiming a trial and its first heartbeat strands nothing.
- A trial whose owner runs on this host (same host identity) and whose process is gone is stale at
  once, without waiting for the grace.

The lease compares wall clocks of the hosts that share a study: keep them synchronised (NTP) and the
grace well above the clock skew and the heartbeat interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger("bench")

HOST_ENV = "SEGKD_HOST"  # overrides the host name recorded as a trial's owner (tests, containers)
HEARTBEAT = "heartbeat"


def host_identity() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def owner() -> dict[str, Any]:
    """Who runs a trial: host identity, process id and, under Slurm, the job."""
    who: dict[str, Any] = {"host": host_identity(), "pid": os.getpid()}
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        who["slurm_job"] = f"{job}_{task}" if task else job
    return who


def backend(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The study's storage without Optuna's ``_CachedStorage`` wrapper (which hides ``RDBStorage``)."""
    storage = study._storage  # Optuna has no public accessor
    return getattr(storage, "_backend", storage)


def claim(study: optuna.Study, trial: optuna.Trial) -> None:
    """Record the owner and the first heartbeat of a just-asked trial."""
    storage = study._storage
    storage.set_trial_user_attr(trial._trial_id, "owner", owner())
    storage.set_trial_user_attr(trial._trial_id, HEARTBEAT, time.time())


class Lease:
    """A thread that keeps a trial's heartbeat fresh; :attr:`lost` is set once another worker failed it."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        self.storage, self.db = study._storage, backend(study)
        self.trial_id, self.interval = trial_id, interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def beat(self) -> None:
        try:
            self.storage.set_trial_user_attr(self.trial_id, HEARTBEAT, time.time())
            if isinstance(self.db, optuna.storages.RDBStorage):
                self.db.record_heartbeat(self.trial_id)
        except UpdateFinishedTrialError:
            self.lost.set()
            self._stop.set()
        except Exception as e:  # a storage hiccup: the next beat retries; the grace covers a few misses
            log.warning("trial heartbeat failed (%s: %s); retrying", type(e).__name__, str(e)[:200])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> Lease:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def last_sign_of_life(trial: FrozenTrial) -> float:
    beat = trial.user_attrs.get(HEARTBEAT)
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(beat or 0.0), start)


def stale_reason(trial: FrozenTrial, grace: float, now: float) -> str | None:
    """Why a RUNNING trial is stale (its worker is gone), or None while its lease holds."""
    who = trial.user_attrs.get("owner") or {}
    if who.get("host") == host_identity() and not pid_alive(who.get("pid", -1)):
        return f"its worker (pid {who.get('pid')}) on this host is gone"
    silent = now - last_sign_of_life(trial)
    if silent > grace:
        where = f" on {who['host']}" if who.get("host") else " (claimed, never started)"
        return f"no heartbeat for {silent:.0f} s > tune.heartbeat_grace={grace:g}{where}"
    return None


def fail_stale_trials(study: optuna.Study, grace: float, reason: str = "stale") -> list[int]:
    """Fail every stale RUNNING trial of ``study`` (uncounted, replaced); returns their numbers."""
    now = time.time()
    storage = study._storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = stale_reason(trial, grace, now)
        if why is None:
            continue
        with contextlib.suppress(UpdateFinishedTrialError):  # another worker got there first
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
            storage.set_trial_user_attr(trial._trial_id, "error", why)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial.number)
            log.warning("%s: trial %d failed as %s: %s", study.study_name, trial.number, reason, why)
    return failed


def fail_trials_of(study: optuna.Study, pids: set[int], reason: str) -> list[int]:
    """Fail the RUNNING trials owned by processes ``pids`` of this host (workers that were stopped).

    Returns the numbers of all their failed trials, also those the workers marked themselves.
    """
    storage = study._storage
    failed = []
    host = host_identity()
    for trial in study.get_trials(deepcopy=False):
        who = trial.user_attrs.get("owner") or {}
        if who.get("host") != host or who.get("pid") not in pids:
            continue
        if trial.state == TrialState.RUNNING:
            with contextlib.suppress(UpdateFinishedTrialError):
                storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                log.warning("%s: trial %d of a stopped worker failed", study.study_name, trial.number)
        if trial.state in (TrialState.RUNNING, TrialState.FAIL):
            failed.append(trial.number)
    return failed


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
