"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A crash or Ctrl-C leaves either the old file or the new one, never a half-written one. The file gets
the mode a plain ``open(path, "w")`` would give it (0666 less the umask), not ``mkstemp``'s 0600, so a
team's group can read result rows, tables and checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races with threads)."""
    with contextlib.suppress(OSError, ValueError, StopIteration), open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a binary file object whose bytes become ``path`` atomically (any writer:
    ``torch.save``, ``Figure.savefig(f, format=...)``, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    payload = (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode()
    return write_atomic(path, lambda f: f.write(payload))


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(text.encode()))


def torch_save(obj: Any, f: IO[bytes]) -> None:
    """``torch.save(obj, f)``, except that a ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM through
    :func:`bench.utils.signals.raise_on_sigterm`) raised while it writes stays what it is: torch's zip
    writer, unwound by it after a write, raises ``RuntimeError: … unexpected pos`` in its place, and a
    trial stopped while it checkpoints would count as crashed instead of interrupted."""
    import torch  # here: the text and JSON writers serve commands that never load torch (--help)

    try:
        torch.save(obj, f)
    except RuntimeError as e:
        if isinstance(e.__context__, KeyboardInterrupt):
            raise e.__context__ from None
        raise


def save_torch_atomic(path: str | Path, obj: Any) -> Path:
    """``torch.save`` to ``path`` atomically (:func:`torch_save`)."""
    return write_atomic(path, lambda f: torch_save(obj, f))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
