"""``make plan``: the cost table's arithmetic, on a step time the test controls."""

from __future__ import annotations

import pytest

from bench.config.compose import load_config
from bench.plan import BYTES, FlopEstimate, Timing, forward_flops, main, parameter_count, split_sizes

pytestmark = pytest.mark.slow  # builds and times the real presets


class Fixed(Timing):
    """A calibration the test controls: 0.5 s a training step, 0.1 s an evaluated image."""

    source = "fixed"

    def step(self, cfg):
        return 0.5

    def eval_image(self, cfg):
        return 0.1


def _rows(text: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 10 and parts[1] in ("teacher", "study", "finals"):
            rows[(parts[1], parts[2])] = parts
    return rows


def test_plan_arithmetic(tmp_path, capsys):
    common = [
        "dataset.train_size=100", "dataset.val_size=10", "dataset.holdout_size=0.2", "tune.trials=4",
        "tune.trial_iterations=100", "tune.val_interval=25", "tune.final_seeds=2", "train.iterations=300",
        f"teachers_dir={tmp_path}",
    ]  # fmt: skip
    text = main(["dataset=synthetic", "method=kd", *common], timing=Fixed())
    rows = _rows(text)
    assert set(rows) == {("teacher", "deeplabv3_small"), ("teacher", "deeplabv3_small/tune"),
                         ("study", "baseline"), ("study", "kd"), ("finals", "baseline"),
                         ("finals", "kd")}  # fmt: skip
    cfg = load_config(["dataset=synthetic", *common])
    assert split_sizes(cfg) == (100, 20, 10)
    # study: 4 trials × (100 steps × 0.5 s + 4 validations × 20 hold-out images × 0.1 s) = 232 s
    study = rows[("study", "kd")]
    assert study[3:9] == ["4", "100", "500.0", "4", "20", f"{4 * (100 * 0.5 + 4 * 20 * 0.1) / 3600:.1f}"]
    assert float(study[8]) == pytest.approx(0.1, abs=0.05)
    # finals: 2 seeds × (300 steps × 0.5 s + 1 validation × 10 images × 0.1 s)
    finals = rows[("finals", "kd")]
    assert finals[3:6] == ["2", "300", "500.0"]
    params = parameter_count(cfg.student, cfg.dataset.num_classes)
    assert float(finals[9]) == pytest.approx(2 * 3 * BYTES * params / 1e9, abs=0.006)
    hours = {"study": 2 * 4 * (100 * 0.5 + 4 * 20 * 0.1), "finals": 2 * 2 * (300 * 0.5 + 10 * 0.1)}
    teacher_cfg = load_config(["dataset=synthetic", *common], "teacher_run")
    # two teachers under one recipe: the full-data one (finals) and the tuning one (train minus hold-out)
    hours["teacher"] = 2 * (teacher_cfg.train.iterations * 0.5 + 10 * 0.1)
    total = sum(hours.values()) / 3600
    assert f"synthetic total: {total:,.1f} GPU-h (teacher {hours['teacher'] / 3600:,.1f}" in text
    # make fidelity, priced but optional (not in the total): 2 × tune.fidelity_k runs at the final
    # schedule on the tuning split, one validation on the 20 hold-out images each
    fidelity = next(line.split() for line in text.splitlines() if line.split()[1:3] == ["fidelity", "kd"])
    assert fidelity[3:8] == ["6", "300", "500.0", "1", "20"]
    assert float(fidelity[8]) == pytest.approx(6 * (300 * 0.5 + 20 * 0.1) / 3600, abs=0.05)
    # a teacher already trained costs nothing
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "deeplabv3_small.pt").write_bytes(b"")
    again = _rows(main(["dataset=synthetic", "method=kd", *common], timing=Fixed()))
    assert again[("teacher", "deeplabv3_small")][3] == "0"
    assert again[("teacher", "deeplabv3_small/tune")][3] == "1"  # the tuning teacher is still to train
    capsys.readouterr()


def test_plan_prices_a_tuning_teacher_per_repeat_and_none_without_kd(tmp_path, capsys):
    common = ["tune.trials=2", "tune.trial_iterations=10", f"teachers_dir={tmp_path}", "tune.repeats=2"]
    text = main(["dataset=synthetic", "method=kd", *common], timing=Fixed())
    tuning = [line for line in text.splitlines() if "deeplabv3_small/tune" in line]
    assert len(tuning) == 2  # each repeat's hold-out has its own tuning teacher
    assert "seed 0)" in tuning[0] and "seed 0)" not in tuning[1]
    baseline_only = _rows(main(["dataset=synthetic", "method=baseline", *common], timing=Fixed()))
    assert ("teacher", "deeplabv3_small/tune") not in baseline_only
    capsys.readouterr()


def test_flop_estimate_is_stated_and_adds_the_teacher_forward():
    cfg = load_config(["dataset=synthetic", "method=kd"])
    estimate = FlopEstimate(tflops=10)
    n, size = cfg.dataset.num_classes, tuple(cfg.dataset.image_size)
    student, teacher = forward_flops(cfg.student, n, size), forward_flops(cfg.teacher, n, size)
    assert estimate.step(cfg) == pytest.approx(cfg.train.batch_size * (3 * student + teacher) / 10e12)
    base = load_config(["dataset=synthetic"])
    assert estimate.step(base) == pytest.approx(base.train.batch_size * 3 * student / 10e12)
    text = main(["dataset=synthetic", "method=kd", "--estimate", "--tflops", "10"])
    assert "ESTIMATES, not measurements" in text and "10 TFLOP/s" in text


def test_plan_prices_maskd_tokens_once_per_teacher_until_stored(tmp_path, capsys):
    from bench.methods.terms.maskd import tokens_path
    from bench.utils.io import sha256_file

    common = ["tune.trials=2", "tune.trial_iterations=10", f"teachers_dir={tmp_path}"]
    rows = _rows(main(["dataset=synthetic", "method=maskd,kd", *common], timing=Fixed()))
    tokens = rows[("teacher", "maskd_tokens")]
    # one run of the release's 10,000 iterations at a third of the teacher's step (its forward only)
    assert tokens[3:6] == ["1", "10000", f"{500 / 3:.1f}"]
    assert float(tokens[8]) == pytest.approx(10000 * 0.5 / 3 / 3600, abs=0.05)
    assert "for maskd" in " ".join(tokens) and "kd" not in tokens[12:]
    assert ("teacher", "maskd_tokens") not in _rows(
        main(["dataset=synthetic", "method=kd", *common], timing=Fixed())
    )
    teacher = tmp_path / "synthetic" / "deeplabv3_small.pt"
    teacher.parent.mkdir()
    teacher.write_bytes(b"teacher")
    rows = _rows(main(["dataset=synthetic", "method=maskd", *common], timing=Fixed()))
    assert rows[("teacher", "maskd_tokens")][3] == "1"  # a teacher but no tokens yet
    stored = tokens_path(teacher, sha256_file(teacher))
    stored.parent.mkdir()
    stored.write_bytes(b"")
    rows = _rows(main(["dataset=synthetic", "method=maskd", *common], timing=Fixed()))
    assert rows[("teacher", "maskd_tokens")][3] == "0"
    capsys.readouterr()
