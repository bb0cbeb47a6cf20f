"""Where studies live: the journal file by default, or a database / Redis URL (``tune.storage``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna

from bench.config.schema import TuneConfig
from bench.errors import ConfigError
from bench.utils.secrets import mask_in, mask_url

JOURNAL = "optuna.journal"


def storage_url(tune: TuneConfig) -> str:
    """The storage a sweep uses: ``tune.storage`` or the journal file under ``tune.studies_dir``."""
    return tune.storage or str(Path(tune.studies_dir) / JOURNAL)


def storage_url_for_log(tune: TuneConfig) -> str:
    return mask_url(storage_url(tune)) or ""


def open_storage(tune: TuneConfig) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the study storage; unreachable URLs are a clear, masked error."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if tune.storage is None or "://" not in tune.storage:
        path = Path(storage_url(tune))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    url = tune.storage
    check_driver(url)
    try:
        if url.startswith(("redis://", "rediss://")):
            backend = optuna.storages.journal.JournalRedisBackend(url)
            return optuna.storages.JournalStorage(backend)
        # No heartbeat_interval here: with ask/tell Optuna would only warn on every ask. The sweep
        # records heartbeats itself (bench.tune.heartbeat).
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as e:  # any driver error means "cannot use this storage"
        reason = mask_in(str(e).splitlines()[0] if str(e) else type(e).__name__, url)
        raise ConfigError(
            f"cannot open study storage {mask_url(url)}: {reason}. Check the URL, that the server is "
            "reachable and the credentials; or leave STORAGE unset for the local journal file"
        ) from None


# URL scheme → (module the pinned SQLAlchemy / Optuna import for it, pyproject extra that installs it)
DRIVERS = {
    "postgresql": ("psycopg", "postgres"),  # SQLAlchemy 2.x: a bare postgresql:// means psycopg 3
    "postgresql+psycopg": ("psycopg", "postgres"),
    "postgresql+psycopg2": ("psycopg2", "postgres-psycopg2"),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
}


def check_driver(url: str) -> None:
    """A storage URL whose driver is not installed is an error naming the extra that installs it."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in DRIVERS:
        return
    module, extra = DRIVERS[scheme]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"storage {mask_url(url)} needs the Python module '{module}', which is not installed; "
            f"install it with: pip install -e '.[{extra}]'"
        )
