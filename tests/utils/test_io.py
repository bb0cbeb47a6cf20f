"""Atomic writes: the mode a plain open() would give (0666 less the umask, not mkstemp's 0600), and an
interrupt during torch.save stays an interrupt."""

import io
import os
import stat

import pytest
import torch

from bench.utils.io import save_torch_atomic, torch_save, write_json_atomic, write_text_atomic


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


@pytest.mark.parametrize("writes", range(1, 11))
def test_an_interrupt_while_torch_saves_stays_an_interrupt(writes):
    """A signal lands between two writes of the zip writer (here: the file raises KeyboardInterrupt
    after its ``writes``-th write went through). Plain torch.save then raises RuntimeError "unexpected
    pos" for most positions — the cluster test saw a Ctrl-C'd trial counted as crashed this way."""

    class InterruptedFile(io.BytesIO):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def write(self, b: bytes) -> int:  # type: ignore[override]
            n = super().write(b)
            self.calls += 1
            if self.calls == writes:
                raise KeyboardInterrupt("signal")
            return n

    with pytest.raises(KeyboardInterrupt, match="signal"):
        torch_save({"a": torch.zeros(100_000), "b": torch.ones(100_000)}, InterruptedFile())
