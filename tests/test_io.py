"""Atomic writes give files the mode a plain open() would: 0666 less the umask (not mkstemp's 0600)."""

import os
import stat

import pytest

from bench.utils.io import save_torch_atomic, write_json_atomic, write_text_atomic


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        paths = [
            write_json_atomic(tmp_path / "row.json", {"a": 1}),
            write_text_atomic(tmp_path / "table.md", "x"),
            save_torch_atomic(tmp_path / "last.pt", {"step": 1}),
        ]
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(old)
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~umask
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [expected] * 3
