"""``make check-data``: every file decoded once; counts, sizes, label values; non-zero exit on faults."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.check_data import main
from bench.cli import run_cli

from .data.layouts import WRITERS


def _check(root, name: str, *overrides: str) -> int:
    args = [f"dataset={name}", f"dataset.root={root}", "train.num_workers=1", "progress=false", *overrides]
    try:
        run_cli(main, "run", "", args)
    except SystemExit as e:
        return e.code
    return 0


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_good_copy_passes(tmp_path, name, capsys):
    WRITERS[name](tmp_path)
    assert _check(tmp_path, name, "dataset.allow_partial=true") == 0
    out = capsys.readouterr().out
    assert f"{name} train:" in out and f"{name} val:" in out and "no fault" in out


def test_every_fault_is_listed_and_the_exit_is_non_zero(tmp_path, capsys):
    WRITERS["ade20k"](tmp_path)
    images = sorted((tmp_path / "images" / "training").glob("*.jpg"))
    images[0].write_bytes(images[0].read_bytes()[:200])  # truncated
    label = tmp_path / "annotations" / "validation" / "ADE_val_00000001.png"
    bad = np.array(Image.open(label))
    bad[0, 0] = 200  # not one of the 150 classes
    Image.fromarray(bad).save(label)
    assert _check(tmp_path, "ade20k") == 2
    captured = capsys.readouterr()
    assert "ade20k train: 3 images (official 20210)" in captured.out
    assert f"cannot read image {images[0]}" in captured.out
    assert "raw label value 200 maps outside the 150 classes" in captured.out and str(label) in captured.out
    assert "official split has 20210" in captured.out  # size fault: no allow_partial
    assert "fault(s) in the ade20k copy" in captured.err
