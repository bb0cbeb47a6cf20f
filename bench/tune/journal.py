"""The journal file storage, made to survive faults: a full disk, a read-only folder, a cut file.

Optuna's journal is one JSON record per line, appended under a lock. Optuna itself skips a last
line without its newline when it reads, but appends the next record right after it: the glued line
is not JSON, and from then on every study of the file fails to load (``JSONDecodeError``). A full
disk mid-append (ENOSPC) leaves exactly such a partial line, and so does a copy cut short.

:class:`SafeJournalBackend` closes both doors:

- **Writing**: a record is appended with ``os.write`` under the journal's lock; when the write
  fails (ENOSPC, EROFS, EACCES, EIO …) the file is cut back to its size before the write, so no
  partial record stays, and a :class:`StorageError` names the path and the cause in one line. What
  was written before — every counted trial — stays; the trial in flight stays RUNNING and is failed
  as stale (not counted) and replaced by the next sweep.
- **Opening**: a journal whose last line is partial (no newline: cut short) is backed up to
  ``<journal>.damaged-<UTC time>``, cut at its last complete record, and a warning names both
  files. Damage before the last line cannot be cut away without losing records after it: the
  journal is refused, naming the line (:func:`inspect` tells what is wrong without changing it;
  ``make status`` uses it).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import JournalFileSymlinkLock, get_lock_file

from bench.errors import BenchError

log = logging.getLogger("bench")

BACKUP_INFIX = ".damaged-"


class StorageError(BenchError):
    """The study storage cannot be written or read as it is (full disk, read-only, damaged file)."""


@dataclass(frozen=True)
class Damage:
    """What is wrong with a journal file: its complete records end at byte ``good``."""

    path: Path
    good: int  # bytes of complete records from the start
    size: int
    line: int  # 1-based number of the first bad line
    tail: bool  # only the last line is bad (it can be cut off without losing any complete record)

    def describe(self) -> str:
        if self.tail:
            return (
                f"study journal {self.path} ends in a partial record ({self.size - self.good} bytes after "
                f"its last complete record, line {self.line}: a full disk, a crash mid-write or a cut copy)"
            )
        return (
            f"study journal {self.path} is damaged at line {self.line} (not a JSON record) with complete "
            "records after it"
        )


def inspect(path: str | Path) -> Damage | None:
    """The damage of the journal at ``path`` (None when every line is a complete JSON record)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    good, number = 0, 0
    lines = data.splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if line.endswith(b"\n"):
            try:
                json.loads(line)
            except ValueError:
                pass
            else:
                good += len(line)
                continue
        # a last line without its newline is a record cut short; a bad line that ends in one holds an
        # append glued to a partial record (what Optuna leaves), which cutting would lose
        return Damage(path, good, len(data), number, tail=number == len(lines) and not line.endswith(b"\n"))
    return None


def describe_os_error(e: OSError) -> str:
    """``No space left on device (ENOSPC)``: the cause of a failed write, as the user needs it."""
    name = errno.errorcode.get(e.errno or 0, "")
    return f"{e.strerror or e}" + (f" ({name})" if name else "")


def _fix_for(e: OSError) -> str:
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return "free space there (or move the studies: tune.studies_dir=… / STORAGE=…) and rerun"
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "make the folder writable, or point tune.studies_dir / STORAGE at a writable place, and rerun"
    return "fix the storage and rerun"


def write_error(path: Path, e: OSError, cut: bool = True) -> StorageError:
    kept = (
        "nothing counted was lost (the record was not written; the trial in flight is replaced)"
        if cut
        else "its last record may be partial: the next sweep backs the file up and cuts it"
    )
    return StorageError(
        f"cannot write the study journal {path}: {describe_os_error(e)}; {kept}; {_fix_for(e)}"
    )


class SafeJournalBackend(JournalFileBackend):
    """:class:`~optuna.storages.journal.JournalFileBackend` that repairs a cut tail on opening and never
    leaves a partial record when an append fails (see the module docstring).

    ``repair=False`` opens without changing the file (a damaged tail is skipped when reading, as
    Optuna does); :func:`inspect` reports it.
    """

    def __init__(self, file_path: str, repair: bool = True) -> None:
        path = Path(file_path)
        lock = JournalFileSymlinkLock(str(path))
        try:
            if not path.exists():  # Optuna opens an existing file for appending even to read it
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            if repair:
                repair_journal(path, lock)
        except OSError as e:
            raise StorageError(
                f"cannot open the study journal {path}: {describe_os_error(e)}; {_fix_for(e)}"
            ) from None
        super().__init__(str(path), lock_obj=lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        path = Path(self._file_path)
        data = ("\n".join(json.dumps(x, separators=(",", ":")) for x in logs) + "\n").encode()
        try:
            with get_lock_file(self._lock):
                append_whole(path, data)
        except _CutFailed as e:
            raise write_error(path, e.cause, cut=False) from None
        except OSError as e:
            raise write_error(path, e) from None


class _CutFailed(Exception):
    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` and fsync it, or leave the file as it was (raising the OSError)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, start)  # a partial record would make the whole journal unreadable
                os.fsync(fd)
            except OSError:
                raise _CutFailed(e) from None
            raise
    finally:
        os.close(fd)


def repair_journal(path: Path, lock: JournalFileSymlinkLock | None = None) -> Path | None:
    """Back up and cut a journal whose last line is partial; returns the backup (None: nothing to do).

    Done under the journal's lock, so a record another process is appending is never taken for a cut
    one. Damage before the last line is a :class:`StorageError` (cutting there would drop records).
    """
    damage = inspect(path)
    if damage is None:
        return None
    with get_lock_file(lock or JournalFileSymlinkLock(str(path))):
        damage = inspect(path)  # again, under the lock
        if damage is None:
            return None
        if not damage.tail:
            raise StorageError(
                f"{damage.describe()}; it cannot be cut without losing them: restore it from a backup "
                "(a `.damaged-` copy next to it, if any) or move it away to start new studies"
            )
        backup = path.with_name(path.name + BACKUP_INFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        shutil.copy2(path, backup)
        with open(path, "r+b") as f:
            f.truncate(damage.good)
            f.flush()
            os.fsync(f.fileno())
    log.warning(
        "%s; kept the file as it was in %s and cut %s at its last complete record",
        damage.describe(),
        backup,
        path,
    )
    return backup
