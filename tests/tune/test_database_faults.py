"""A PostgreSQL storage that goes away mid-trial, against the real server (``.ci/postgres.sh``).

Before: the sweep died with the driver's traceback (``sqlalchemy.exc.OperationalError``). Now: one
line naming the storage (password masked), the study as it was (the trial in flight RUNNING, never
counted), and the next sweep replaces that trial and meets the budget exactly.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from bench.tune import study as st

from ..conftest import sweep_args

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _sweep(tmp_path, url, *extra):
    args = sweep_args(
        tmp_path,
        None,
        "tune.trials=2",
        "train.iterations=30",
        "tune.heartbeat_interval=0.5",
        "tune.heartbeat_grace=3",
        f"tune.storage='{url}'",
        *extra,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.sweep", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _study(url):
    storage = optuna.storages.RDBStorage(url)
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def _allow(admin_url, db, allow):
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:  # the sweep's open connections are cut: the server is gone for it
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))


def test_a_connection_lost_mid_trial_leaves_the_study_consistent_and_the_trial_uncounted(
    tmp_path, postgres_url, postgres_db
):
    db = postgres_db.rsplit("/", 1)[1]
    secret = postgres_db.split(":")[2].split("@")[0]
    sweep = _sweep(tmp_path, postgres_db)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and sweep.poll() is None:
            try:
                running = _study(postgres_db).get_trials(states=(TrialState.RUNNING,))
            except ValueError:  # no study yet
                running = []
            if running:
                break
            time.sleep(0.3)
        assert running, "no trial started"
        _allow(postgres_url, db, False)
        out, err = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        _allow(postgres_url, db, True)
    assert sweep.returncode == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and "lost the connection to the study storage postgresql://bench:***@" in errors[0]
    )
    assert "Traceback" not in err and secret not in out + err
    study = _study(postgres_db)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]  # as it was: nothing half-told
    assert not st.tally(study).counted
    rerun = _sweep(tmp_path, postgres_db)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    study = _study(postgres_db)
    states = [(t.state, t.user_attrs.get("fail_reason")) for t in study.trials]
    assert states[0] == (TrialState.FAIL, "stale")  # the trial in flight: not counted, replaced
    assert len(st.tally(study).counted) == 2 and st.literature_default(study) is not None
