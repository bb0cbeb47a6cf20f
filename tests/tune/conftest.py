"""Real services for the cluster tests: a PostgreSQL server and a one-node Slurm cluster.

``.ci/run`` starts both (``.ci/postgres.sh``, ``.ci/slurm.sh``) and passes them in
``SEGKD_TEST_POSTGRES_URL`` and ``SLURM_CONF``. Without them, the fixtures start their own with the
same scripts where the packages are installed; where they cannot, the tests skip with a loud reason
locally and fail in CI (``CI=true``).
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
SLURM_ENV = "SLURM_CONF"


def _service(env: str, script: str, missing: str, sub: str = "") -> Iterator[str]:
    """``$env`` if set; else what ``.ci/<script> start <folder>[/sub]`` prints (stopped afterwards)."""
    if os.environ.get(env):
        yield os.environ[env]
        return
    folder = Path(tempfile.mkdtemp(prefix=f"segkd-{Path(script).stem}-"))
    folder.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
    target, path = str(folder / sub), str(ROOT / ".ci" / script)
    started = subprocess.run(["bash", path, "start", target], capture_output=True, text=True)
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()[-1:] or ["no output"]
        message = f"{missing} or set {env} ({why[0]})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", path, "stop", target], capture_output=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    missing = "NO POSTGRESQL SERVER: the storage tests against a real server did not run: install postgresql"
    yield from _service(URL_ENV, "postgres.sh", missing, sub="pg")


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """A real one-node Slurm cluster on localhost: its ``slurm.conf`` (clients read ``SLURM_CONF``)."""
    missing = (
        "NO SLURM CLUSTER: the Slurm launcher test did not run: as root, apt-get install slurm-wlm munge"
    )
    yield from _service(SLURM_ENV, "slurm.sh", missing)


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
