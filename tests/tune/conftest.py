"""A real PostgreSQL server for the storage tests.

``.ci/run`` starts one and passes its URL in ``SEGKD_TEST_POSTGRES_URL``. Without it, the fixture
starts its own with ``.ci/postgres.sh`` where PostgreSQL is installed; where it cannot, the tests
skip with a loud reason locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
URL_ENV = "SEGKD_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    folder = Path(tempfile.mkdtemp(prefix="segkd-pg-"))
    folder.chmod(0o755)  # the server runs as the postgres user when we are root
    script = ROOT / ".ci" / "postgres.sh"
    command = ["bash", str(script), "start", str(folder / "pg")]
    started = subprocess.run(command, capture_output=True, text=True)
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()[-1:] or ["no output"]
        message = (
            f"NO POSTGRESQL SERVER: the storage tests against a real server did not run ({why[0]}); "
            f"install Debian's postgresql or set {URL_ENV}"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder / "pg")], capture_output=True)


@pytest.fixture
def postgres_db(postgres_url: str, request: pytest.FixtureRequest) -> str:
    """A fresh database on the test server (studies are named by config, so tests must not share one)."""
    import re
    import uuid

    import psycopg

    name = "t_" + re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_url.rsplit("/", 1)[0] + "/" + name


SLURM_ENV = "SLURM_CONF"


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """A real one-node Slurm cluster on localhost; yields its ``slurm.conf`` (clients read ``SLURM_CONF``).

    ``.ci/run`` starts one with ``.ci/slurm.sh`` and exports ``SLURM_CONF``. Without it, the fixture
    starts its own where Debian's ``slurm-wlm`` and ``munge`` are installed (as root); where it cannot,
    the tests skip with a loud reason locally and fail in CI (``CI=true``).
    """
    if os.environ.get(SLURM_ENV):
        yield os.environ[SLURM_ENV]
        return
    folder = Path(tempfile.mkdtemp(prefix="segkd-slurm-"))
    script = ROOT / ".ci" / "slurm.sh"
    started = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True)
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()[:1] or ["no output"]
        message = (
            f"NO SLURM CLUSTER: the Slurm launcher test did not run ({why[0]}); as root, "
            f"apt-get install slurm-wlm munge, or set {SLURM_ENV} to a cluster's slurm.conf"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)
