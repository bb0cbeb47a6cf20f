"""MasKD against values computed by hand; tokens keyed by teacher; stage 1 and a sweep end to end."""

import math
import shutil

import pytest
import torch

from bench.errors import CheckpointError, ConfigError
from bench.methods import TermContext, build_term
from bench.methods.terms.maskd import dice_diversity, maskd_loss, tokens_path
from bench.models import Taps


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_maskd_loss_by_hand():
    # B=1, C=2 classes, two pixels, one token Q = (1, 0): masks m_i = sigmoid(z^t_{0,i}).
    t = torch.tensor([[[[0.0, 2.0]], [[1.0, -1.0]]]])  # z^t class 0 = (0, 2), class 1 = (1, -1)
    s = torch.tensor([[[[1.0, 2.0]], [[1.0, 1.0]]]])
    m = [_sig(0.0), _sig(2.0)]
    den = m[0] + m[1] + 1e-5
    c0 = (m[0] ** 2 * 1.0 + m[1] ** 2 * 0.0) / den  # (s − t)² of class 0 = (1, 0)
    c1 = (m[0] ** 2 * 0.0 + m[1] ** 2 * 4.0) / den  # class 1 = (0, 4)
    expected = 0.5 * (c0 + c1) / 2  # mean over B·T·C = 2
    assert maskd_loss(s, t, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(expected, rel=1e-6)


def test_dice_diversity_by_hand():
    masks = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]]]])  # two tokens: (1, 0) and (1, 1)
    dice = 2 * 1 / (1 + 2)  # ⟨m0, m1⟩ = 1, ‖m0‖² = 1, ‖m1‖² = 2; both ordered pairs equal
    assert dice_diversity(masks).item() == pytest.approx(dice, rel=1e-6)


def test_aux_part_has_the_release_factor():
    g = torch.Generator().manual_seed(0)
    s, t, sa, ta = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(4))
    term = build_term("maskd", TermContext(num_classes=3), tokens="random")
    taps = lambda z, a: Taps(stages=[], feat=None, logits_low=z, aux_logits=a, size=(32, 32))  # noqa: E731
    main = maskd_loss(s, t, term.tokens)
    aux = maskd_loss(sa, ta, term.tokens)
    assert term(taps(s, sa), taps(t, ta)).item() == pytest.approx((main + 0.4 * aux).item(), rel=1e-6)
    assert term(taps(s, None), taps(t, ta)).item() == pytest.approx(main.item(), rel=1e-6)


def _tokens_file(tmp_path, sha: str, shape=(8, 3)):
    teacher = tmp_path / "synthetic" / "teacher.pt"
    path = tokens_path(teacher, sha)
    path.parent.mkdir(parents=True)
    meta = {"teacher_sha256": sha, "teacher_checkpoint": str(teacher), "teacher": "t", "dataset": "synthetic"}
    torch.save({"tokens": torch.randn(*shape), "meta": meta}, path)
    return teacher, path


def test_tokens_are_found_by_the_teacher_sha(tmp_path):
    teacher, _ = _tokens_file(tmp_path, "a" * 64)
    term = build_term("maskd", TermContext(num_classes=3, teacher_checkpoint=(str(teacher), "a" * 64)))
    assert term.tokens.shape == (8, 3)


def test_missing_tokens_name_the_command(tmp_path):
    ctx = TermContext(num_classes=3, teacher_checkpoint=(str(tmp_path / "t.pt"), "b" * 64))
    with pytest.raises(CheckpointError, match=r"no MasKD tokens for teacher .*make maskd-tokens"):
        build_term("maskd", ctx)


def test_tokens_of_another_teacher_are_refused_naming_both(tmp_path):
    """A tokens file copied under this teacher's key (or passed by path) still says whose it is."""
    _, path = _tokens_file(tmp_path, "a" * 64)
    other = tmp_path / "other.pt"
    ctx = TermContext(num_classes=3, teacher_checkpoint=(str(other), "c" * 64))
    with pytest.raises(
        CheckpointError,
        match=r"belong to teacher .*teacher\.pt \(sha256 aaaaaaaaaaaa.*other\.pt \(sha256 cccccccccccc",
    ):
        build_term("maskd", ctx, tokens=str(path))
    renamed = tokens_path(other, "c" * 64)
    renamed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, renamed)  # under the right name, the wrong content
    with pytest.raises(CheckpointError, match="belong to teacher"):
        build_term("maskd", ctx)


def test_tokens_of_another_class_count_are_refused(tmp_path):
    teacher, _ = _tokens_file(tmp_path, "a" * 64, shape=(8, 5))
    ctx = TermContext(num_classes=3, teacher_checkpoint=(str(teacher), "a" * 64))
    with pytest.raises(ConfigError, match=r"are \(8, 5\) .*needs \(8, 3\)"):
        build_term("maskd", ctx)


def test_cost_only_context_uses_random_tokens_and_a_plain_one_does_not():
    assert build_term("maskd", TermContext(num_classes=3, cost_only=True)).tokens.shape == (8, 3)
    with pytest.raises(ConfigError, match="teacher checkpoint"):
        build_term("maskd", TermContext(num_classes=3))


@pytest.mark.slow
def test_stage_one_then_a_maskd_sweep_end_to_end(tmp_path, teachers_dir):
    """`make maskd-tokens` then `make sweep METHOD=maskd DATASET=synthetic` with those tokens."""
    from bench.maskd_tokens import main as tokens_main
    from bench.teachers import teacher_path
    from bench.tune import study as st
    from bench.tune.runner import run_sweep

    from ..conftest import HOLDOUT, TINY, sweep_args, tiny_config

    own = tmp_path / "teachers"
    shutil.copytree(teachers_dir, own, ignore=shutil.ignore_patterns("maskd_tokens"))
    cfg = tiny_config(tmp_path, f"teachers_dir={own}", "method=maskd")
    with pytest.raises(CheckpointError, match="make maskd-tokens"):
        from bench.engine.trainer import Trainer

        Trainer(cfg)
    # the sweeps' hold-out: tokens for the full-data teacher and the tuning teacher the sweep loads
    tokens_main([*TINY, *HOLDOUT, f"teachers_dir={own}", f"output_dir={tmp_path / 'tok'}", "iterations=5"])
    from bench.utils.io import sha256_file

    path = teacher_path(cfg)
    stored = tokens_path(path, sha256_file(path))
    meta = torch.load(stored, weights_only=False)["meta"]
    assert meta["iterations"] == 5 and meta["teacher_sha256"] == sha256_file(path)
    sweep = run_sweep(sweep_args(tmp_path, own, "method=maskd", "tune.trials=1"))
    assert len(st.tally(sweep.study).counted) == 1


def test_stage_one_takes_its_own_iterations_key_and_refuses_a_bad_one():
    from bench.maskd_tokens import ITERATIONS, split_iterations

    assert split_iterations(["dataset=voc", "iterations=25"]) == (25, ["dataset=voc"])
    assert split_iterations(["dataset=voc"]) == (ITERATIONS, ["dataset=voc"])
    for bad in ("iterations=0", "iterations=x", "iterations=-3"):
        with pytest.raises(ConfigError, match="give a positive whole number"):
            split_iterations([bad])
