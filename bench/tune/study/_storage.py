"""Where studies live: the journal file by default, or a database / Redis URL (``tune.storage``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna

from bench.config.schema import TuneConfig
from bench.errors import ConfigError
from bench.tune.journal import SafeJournalBackend, StorageError, describe_os_error
from bench.utils.secrets import mask_in, mask_url

JOURNAL = "optuna.journal"


def storage_url(tune: TuneConfig) -> str:
    """The storage a sweep uses: ``tune.storage`` or the journal file under ``tune.studies_dir``."""
    return tune.storage or str(Path(tune.studies_dir) / JOURNAL)


def storage_url_for_log(tune: TuneConfig) -> str:
    return mask_url(storage_url(tune)) or ""


def open_storage(tune: TuneConfig, repair: bool = True) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the study storage; unreachable URLs are a clear, masked error.

    A journal file is opened through :class:`~bench.tune.journal.SafeJournalBackend`: a partial last
    record is backed up and cut (``repair=False``: left as it is, for a read-only look), and a write
    that fails (full disk, read-only folder) is one line naming the path, with nothing counted lost.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if tune.storage is None or "://" not in tune.storage:
        backend = SafeJournalBackend(storage_url(tune), repair=repair)
        try:
            return optuna.storages.JournalStorage(backend)
        except (OSError, ValueError) as e:  # ValueError: a damaged record Optuna cannot replay
            why = describe_os_error(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
            raise StorageError(
                f"cannot read the study journal {storage_url(tune)}: {why}; `make status` tells what is "
                "wrong with it"
            ) from None
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


def connection_lost(e: BaseException, tune: TuneConfig) -> StorageError | None:
    """The one-line error for a storage server that went away (None: ``e`` is something else).

    A database storage writes each change in one transaction, so a connection lost mid-trial leaves
    the study as it was: the trial in flight stays RUNNING, goes stale and is replaced (not counted).
    """
    if isinstance(e, StorageError):
        return e
    cause = _connection_error(e)
    if cause is None:
        return None
    url = tune.storage or storage_url(tune)
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return StorageError(
        f"lost the connection to the study storage {mask_url(url)}: {mask_in(first, url)}; nothing counted "
        "was lost (the trial in flight is not counted: rerun the sweep when the server is back and it is "
        "replaced once its lease expires)"
    )


def _connection_error(e: BaseException | None) -> BaseException | None:
    """The driver's connection error in ``e``'s chain (Optuna wraps it in StorageInternalError)."""
    seen = 0
    while e is not None and seen < 10:
        name, module = type(e).__name__, type(e).__module__ or ""
        if module.startswith("sqlalchemy") and name in ("OperationalError", "InterfaceError"):
            return e
        if module.startswith("redis") and "Connection" in name:
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


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
