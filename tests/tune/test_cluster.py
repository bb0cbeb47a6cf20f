"""Sweeps on a cluster: leases on a real PostgreSQL server, kill -9, signals, secrets, drivers, status.

The worker processes here are real ``python -m bench.sweep`` processes; two of them get different
host identities (``SEGKD_HOST``), as two machines sharing one database would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.config.compose import load_config
from bench.errors import BenchError, ConfigError
from bench.tune import heartbeat as hb
from bench.tune import study as st
from bench.tune.runner import Sweep, run_sweep
from bench.tune.status import study_status

from ..conftest import sweep_args

ROOT = Path(__file__).resolve().parents[2]
FAST_LEASE = ["tune.heartbeat_interval=0.5", "tune.heartbeat_grace=4"]


def _env(host: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", hb.HOST_ENV: host}


def _sweep(args: list[str], host: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(host),
        cwd=ROOT,
        **kw,
    )


def _load(url: str) -> optuna.Study:
    storage = optuna.storages.RDBStorage(url) if "://" in url else st.open_storage(_tune_of(url))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _tune_of(studies_dir: str):
    return load_config(["output_dir=x", f"tune.studies_dir={studies_dir}"]).tune


def _wait_for(predicate, timeout: float = 240.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running_of(study_url: str, host: str) -> list[optuna.trial.FrozenTrial]:
    try:
        study = _load(study_url)
    except ValueError:  # the study does not exist yet
        return []
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if (t.user_attrs.get("owner") or {}).get("host") == host
    ]


def _secret(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def _no_secret_in_files(root: Path, secret: str) -> None:
    for path in root.rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_killed_worker_on_another_host_goes_stale_and_the_survivor_completes_the_budget(
    tmp_path, postgres_db
):
    """Two hosts share a PostgreSQL study; host-a is killed -9 mid-trial. host-b alone finishes N trials."""
    n = 3
    args = sweep_args(
        tmp_path,
        None,
        f"tune.storage='{postgres_db}'",
        f"tune.trials={n}",
        "tune.trial_iterations=200",
        *FAST_LEASE,
    )
    # Started together, with long trials: both hold a running trial at once, whatever the load.
    a, b = _sweep(args, "host-a"), _sweep(args, "host-b")
    _wait_for(
        lambda: _running_of(postgres_db, "host-a") and _running_of(postgres_db, "host-b"),
        what="a running trial on each host",
    )
    a.send_signal(signal.SIGKILL)  # mid-trial: no chance to tell anyone
    a.wait(timeout=60)
    (victim,) = _running_of(postgres_db, "host-a")
    a_out, a_err = a.communicate(timeout=60)
    b_out, b_err = b.communicate(timeout=600)
    assert b.returncode == 0, b_err[-3000:]

    study = _load(postgres_db)
    counted = st.tally(study).counted
    dead = next(t for t in study.trials if t.number == victim.number)
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"] == "stale"
    assert "tune.heartbeat_grace=4" in dead.user_attrs["error"]
    assert len(counted) == n and not st.tally(study).running
    assert all(t.user_attrs["owner"]["host"] == "host-b" for t in counted if t.number > victim.number)
    assert sum(t.user_attrs["owner"]["host"] == "host-b" for t in counted) >= 1
    # host-b's trials recorded Optuna's own heartbeats too
    storage = optuna.storages.RDBStorage(postgres_db)
    assert storage._get_stale_trial_ids.__self__ is storage  # an RDBStorage, unwrapped
    from optuna.storages._rdb import models

    with storage.scoped_session() as session:
        assert session.query(models.TrialHeartbeatModel).count() >= 1
    secret = _secret(postgres_db)
    for text in (a_out, a_err, b_out, b_err):
        assert secret not in text
    assert "bench:***@" in b_err
    _no_secret_in_files(tmp_path, secret)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_parent_stops_every_worker_and_fails_their_trials(tmp_path, sig, request):
    """SIGTERM to the parent (PostgreSQL), Ctrl-C to the group (journal): 143 / 130, no orphan."""
    storage = []
    if sig == signal.SIGTERM:
        url = request.getfixturevalue("postgres_db")
        storage = [f"tune.storage='{url}'"]
    args = sweep_args(
        tmp_path,
        None,
        *storage,
        "tune.trials=6",
        "tune.workers=2",
        "tune.trial_iterations=4000",  # trials long enough that none ends before the signal
        *FAST_LEASE,
    )
    where = url if storage else str(tmp_path / "studies")
    host = f"host-{sig.name}"
    parent = _sweep(args, host, start_new_session=True)  # its own process group, like a terminal job
    running = _wait_for(
        lambda: len(_running_of(where, host)) == 2 and _running_of(where, host), what="2 trials"
    )
    pids = {t.user_attrs["owner"]["pid"] for t in running}
    assert parent.pid in pids and len(pids) == 2  # the parent is worker 0, beside one worker process
    if sig == signal.SIGINT:
        os.killpg(parent.pid, sig)  # Ctrl-C in a terminal: every process of the foreground group
    else:
        parent.send_signal(sig)  # Slurm / Kubernetes: the parent alone
    out, err = parent.communicate(timeout=180)
    assert parent.returncode == 128 + sig, err[-3000:]
    assert not [pid for pid in pids if hb.pid_alive(pid)], "orphaned workers"
    study = _load(where)
    stopped = [t for t in study.trials if t.number in {r.number for r in running}]
    states = [(t.number, t.state, t.user_attrs.get("fail_reason")) for t in stopped]
    assert all(state == TrialState.FAIL and why == "interrupted" for _, state, why in states), states
    assert not st.tally(study).running and not [t for t in stopped if st.is_counted(t)]
    assert not list((tmp_path / "trials").rglob("*.pt")), "an interrupted trial left its checkpoint"
    if storage:
        assert _secret(url) not in out + err
        _no_secret_in_files(tmp_path, _secret(url))


@pytest.mark.slow
def test_make_does_not_echo_the_storage_password(tmp_path, postgres_db):
    args = " ".join(a for a in sweep_args(tmp_path, None, "tune.trials=1") if "=" in a)
    result = subprocess.run(
        ["make", "baseline", f"STORAGE={postgres_db}", f"ARGS={args}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    rc = result.returncode  # (not the CompletedProcess: its repr would print the URL on failure)
    assert rc == 0, result.stderr[-3000:]
    assert _secret(postgres_db) not in result.stdout + result.stderr
    assert "bench:***@" in result.stderr
    status = subprocess.run(
        ["make", "status", f"STORAGE={postgres_db}"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    rc = status.returncode
    assert rc == 0, status.stderr[-2000:]
    assert "1/1 counted, 0 running, 0 stale, 0 failed" in status.stdout
    assert _secret(postgres_db) not in status.stdout + status.stderr
    _no_secret_in_files(tmp_path, _secret(postgres_db))


def test_a_lease_records_heartbeats_on_the_database(postgres_db):
    study = optuna.create_study(storage=st.open_storage(_tune_with(postgres_db)))
    trial = study.ask()
    hb.claim(study, trial)
    first = study.trials[0].user_attrs[hb.HEARTBEAT]
    with hb.Lease(study, trial._trial_id, 0.05):
        time.sleep(0.5)
    assert study.trials[0].user_attrs[hb.HEARTBEAT] > first
    assert hb.backend(study)._get_stale_trial_ids.__name__  # the unwrapped RDBStorage
    assert isinstance(hb.backend(study), optuna.storages.RDBStorage)
    study.tell(trial, 1.0)
    lease = hb.Lease(study, trial._trial_id, 1.0)
    lease.beat()  # a trial finished (or failed by another worker) loses its lease
    assert lease.lost.is_set()


def _tune_with(url: str):
    return load_config(["output_dir=x", f"tune.storage='{url}'"]).tune


def test_a_claimed_trial_without_owner_or_heartbeat_goes_stale_by_its_start(tmp_path):
    """A kill between ``ask`` and recording the owner leaves a trial that still expires."""
    args = sweep_args(
        tmp_path, None, "tune.trials=1", "tune.heartbeat_interval=0.1", "tune.heartbeat_grace=0.5"
    )
    sweep = Sweep.open(args)
    sweep.study.ask(sweep.space.distributions)  # claimed, then "killed": no owner, no heartbeat
    assert hb.fail_stale_trials(sweep.study, 0.5) == []
    assert study_status(sweep.study, 0.5).running == 1
    time.sleep(0.7)
    assert study_status(sweep.study, 0.5).stale == 1
    assert hb.fail_stale_trials(sweep.study, 0.5) == [0]
    trial = sweep.study.trials[0]
    assert trial.user_attrs["fail_reason"] == "stale" and "never started" in trial.user_attrs["error"]
    assert not st.is_counted(trial)


def test_a_fresh_lease_of_another_host_is_respected(tmp_path):
    sweep = Sweep.open(sweep_args(tmp_path, None, "tune.trials=1"))
    trial = sweep.study.ask(sweep.space.distributions)
    trial.set_user_attr("owner", {"host": "elsewhere", "pid": 1})
    time.sleep(0.6)
    trial.set_user_attr(hb.HEARTBEAT, time.time())
    assert hb.fail_stale_trials(sweep.study, 0.5) == []  # started long ago, but its heartbeat is fresh
    time.sleep(0.6)  # pid 1 is not ours to judge (another host): only the lease decides
    assert hb.fail_stale_trials(sweep.study, 0.5) == [trial.number]


def test_a_missing_driver_names_the_extra_to_install(tmp_path):
    with pytest.raises(ConfigError, match=r"module 'psycopg2'.*pip install -e '\.\[postgres-psycopg2\]'"):
        st.check_driver("postgresql+psycopg2://u:pw@h/db")
    st.check_driver("postgresql://u:pw@h/db")  # psycopg 3 comes with the [postgres] extra
    with pytest.raises(ConfigError) as e:
        Sweep.open(sweep_args(tmp_path, None, "tune.storage='postgresql+psycopg2://u:s3cr3t@h/db'"))
    assert "s3cr3t" not in str(e.value)


def test_heartbeat_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="heartbeat_interval"):
        Sweep.open(sweep_args(tmp_path, None, "tune.heartbeat_interval=10", "tune.heartbeat_grace=5"))


@pytest.mark.slow
def test_a_memory_limit_stops_the_study_once_naming_the_term(tmp_path, teachers_dir):
    args = sweep_args(
        tmp_path,
        teachers_dir,
        "tune.trials=3",
        "+method.terms.fault={term: skd_pair, weight: 0.1}",
        "method.memory_limit_mb=0.000001",
    )
    with pytest.raises(BenchError, match=r"stopped .*term 'fault' needs about .*method.memory_limit_mb"):
        run_sweep(args)
    study = Sweep.open(args).study
    # One trial trained and stopped; its slot's replacement waits for the rerun after the fix.
    ran = [t for t in study.trials if t.state != TrialState.WAITING]
    assert [t.user_attrs["fail_reason"] for t in ran] == ["memory_limit"]


def test_the_slurm_batch_script_carries_the_launcher_settings(tmp_path):
    from bench.workers.slurm import batch_script, sbatch_memory

    cfg = load_config(
        sweep_args(
            tmp_path,
            None,
            "tune.workers=3",
            "launcher.name=slurm",
            "launcher.partition=gpu",
            "launcher.account=lab42",
            "launcher.gpus_per_node=2",
            "launcher.cpus_per_task=8",
            "launcher.mem_gb=32",
            "launcher.timeout_min=90",
            "launcher.max_parallel=2",
            "launcher.setup=[module load cuda]",
            f"launcher.folder={tmp_path}/slurm/%j",
        )
    )
    script = batch_script(cfg, "synthetic/x/none/baseline/trials20")
    for line in (
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab42",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=90",
        f"#SBATCH --output={tmp_path}/slurm/%A_%a/%A_%a_0_log.out",
        "module load cuda",
    ):
        assert line in script, f"{line!r} not in\n{script}"
    assert "--error" not in script  # one log per job
    assert sbatch_memory(0.5) == "512MB"  # sbatch refuses --mem=0.5GB (the real-Slurm test submits it)


@pytest.mark.slow
def test_the_slurm_launcher_runs_an_array_of_workers_on_the_shared_storage(tmp_path, postgres_db):
    """``make sweep LAUNCHER=slurm`` through submitit's local executor: the same array code path."""
    args = sweep_args(
        tmp_path,
        None,
        f"tune.storage='{postgres_db}'",
        "tune.trials=3",
        "tune.workers=2",
        "launcher.name=submitit_local",
        f"launcher.folder={tmp_path}/slurm/%j",
        *FAST_LEASE,
    )
    result = subprocess.run(
        [sys.executable, "-m", "bench.sweep", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=ROOT,
        timeout=600,
    )
    rc = result.returncode
    assert rc == 0, result.stderr[-3000:]
    study = _load(postgres_db)
    counted = st.tally(study).counted
    assert len(counted) == 3 and not st.tally(study).running
    logs = sorted((tmp_path / "slurm").rglob("*_log.out"))
    assert len(logs) == 2, logs  # one log per job
    assert sum("[baseline] trial" in log.read_text() for log in logs) >= 1  # progress lines in the logs
    secret = _secret(postgres_db)
    assert secret not in result.stdout + result.stderr
    _no_secret_in_files(tmp_path, secret)  # job pickles included: the URL travels in the environment


def _settled_job(job_id: str, env: dict[str, str], timeout: float = 60.0) -> str:
    """``scontrol show job`` once Slurm has finished the job's bookkeeping: the sweep returns when
    the job's result is written, and slurmd may report the job RUNNING / COMPLETING a moment longer."""
    deadline = time.monotonic() + timeout
    while True:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, env=env)
        text = shown.stdout + shown.stderr
        if not re.search(r"JobState=(RUNNING|COMPLETING|PENDING)", text) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


@pytest.mark.slow
def test_make_sweep_launcher_slurm_runs_a_job_array_on_a_real_slurm(tmp_path, slurm_conf):
    """``make sweep LAUNCHER=slurm`` on a real one-node Slurm (sbatch, slurmctld, slurmd): two array
    jobs against the journal file on a shared folder, the budget exact, one log per job, ``make status``."""
    n = 3
    args = sweep_args(
        tmp_path,
        None,
        "launcher.cpus_per_task=1",
        "launcher.mem_gb=0.5",
        "launcher.timeout_min=10",
        f"launcher.folder={tmp_path}/slurm/%j",
        *FAST_LEASE,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SLURM_CONF": slurm_conf}
    sweep = subprocess.run(
        ["make", "sweep", "LAUNCHER=slurm", "WORKERS=2", f"TRIALS={n}", f"ARGS={' '.join(args)}"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-3000:]
    job_ids = re.findall(r": job (\d+_\d), log ", sweep.stderr)
    assert len(job_ids) == 2, sweep.stderr[-3000:]
    # Slurm knows the array: its jobs ran through slurmctld / slurmd, not on this process's machine
    for job_id in job_ids:
        shown = _settled_job(job_id, env)
        assert "JobState=COMPLETED" in shown, shown

    study = _load(str(tmp_path / "studies"))
    t = st.tally(study)
    assert len(t.counted) == n and not t.running
    logs = sorted((tmp_path / "slurm").rglob("*_log.out"))
    assert sorted(log.parent.name for log in logs) == sorted(job_ids)  # one log per job
    assert sum("[baseline] trial" in log.read_text() for log in logs) >= 1

    status = subprocess.run(
        ["make", "status", f"ARGS=tune.studies_dir={tmp_path / 'studies'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr[-2000:]
    assert f"{n}/{n} counted, 0 running, 0 stale" in status.stdout, status.stdout
