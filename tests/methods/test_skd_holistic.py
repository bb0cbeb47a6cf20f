"""SKD holistic (adversarial) term: losses by hand, the discriminator's own training and state."""

import pytest
import torch

from bench.config.compose import load_config
from bench.config.schema import MethodConfig
from bench.engine.trainer import Trainer, train_run
from bench.errors import ConfigError
from bench.methods import Objective, TermContext, build_term
from bench.methods.terms.skd_holistic import (
    Discriminator,
    critic_loss,
    generator_loss,
    gradient_penalty,
)
from bench.models import Taps

from ..conftest import CrashAt, tiny_config

C = 3
CTX = TermContext(num_classes=C, total_steps=10)
SMALL = {"conv_dim": 8}  # a narrow discriminator keeps the tests fast


def _taps(logits):
    return Taps.from_logits(logits)


def _pair(grad=False):
    torch.manual_seed(0)
    s = torch.randn(2, C, 8, 8, requires_grad=grad)
    t = torch.randn(2, C, 8, 8, requires_grad=grad)
    return s, t


def test_losses_by_hand():
    d_t = torch.tensor([0.5, 2.0])
    d_s = torch.tensor([-3.0, 0.0])
    assert generator_loss(d_s).item() == pytest.approx(1.5)  # −mean D(z_s)
    # hinge: mean ReLU(1 − D_t) = (0.5 + 0)/2; mean ReLU(1 + D_s) = (0 + 1)/2
    assert critic_loss(d_s, d_t, "hinge").item() == pytest.approx(0.25 + 0.5)
    # WGAN: mean D_s − mean D_t = −1.5 − 1.25
    assert critic_loss(d_s, d_t, "wgan-gp").item() == pytest.approx(-2.75)


def test_gradient_penalty_by_hand():
    # A linear critic D(x) = Σ 2·x has gradient 2 at every entry of every mix: over the C·h·w = 4
    # entries of an image ‖∇‖ = 2·√4 = 4, so the penalty is (4 − 1)² = 9 for every α.
    def critic(x):
        return (2 * x).flatten(1).sum(1)

    s, t = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert gradient_penalty(critic, s, t).item() == pytest.approx(9.0)


def test_discriminator_output_and_small_maps():
    disc = Discriminator(19)  # the official width: 64 → 512 channels
    assert sum(p.numel() for p in disc.parameters()) > 2_000_000
    with torch.no_grad():
        assert disc(torch.randn(1, 19, 64, 128)).shape == (1, 1, 1, 5)  # 64×128 → 4×8 → 4×4 conv
        assert disc(torch.randn(1, 19, 4, 4)).shape == (1, 1, 1, 1)  # enlarged to 64×64 first


def test_the_student_pass_restores_the_discriminator_flags():
    s, t = _pair(grad=True)
    term = build_term("skd_holistic", CTX, **SMALL)
    term(_taps(s), _taps(t)).backward()
    assert all(p.requires_grad for p in term.disc.parameters())  # frozen for the student pass only
    assert term.student_parameters() == []
    method = MethodConfig(name="m", terms={"skd_holistic": term.cfg})
    assert Objective(method, CTX).student_parameters() == []  # D never joins the student optimizer


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_after_step_trains_the_discriminator(loss):
    s, t = _pair()
    term = build_term("skd_holistic", CTX, loss=loss, **SMALL)
    before = {n: p.detach().clone() for n, p in term.disc.named_parameters()}
    term.after_step(_taps(s), _taps(t), torch.zeros(2, 8, 8, dtype=torch.long), step=0)
    still = {n for n, p in term.disc.named_parameters() if torch.equal(before[n], p)}
    # Unchanged by design: attention q/k/v get no gradient while γ = 0 (its initial value), and the
    # last bias's gradient cancels between the teacher and the student sides of both objectives.
    attention = {
        f"attn{i}.{m}.{w}" for i in (3, 4) for m in ("query", "key", "value") for w in ("weight", "bias")
    }
    assert still == attention | {"last.bias"}
    assert term.last_d_loss is not None and torch.isfinite(term.last_d_loss)
    assert term.d_optimizer.state  # Adam moments exist now


def test_discriminator_optimizer_and_poly_schedule():
    term = build_term("skd_holistic", CTX, d_optimizer="sgd", d_poly_power=0.9, d_lr=1e-3, **SMALL)
    assert isinstance(term.d_optimizer, torch.optim.SGD)
    s, t = _pair()
    term.after_step(_taps(s), _taps(t), torch.zeros(2, 8, 8, dtype=torch.long), step=5)
    assert term.d_optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**0.9)  # step 5 of 10
    constant = build_term("skd_holistic", CTX, **SMALL)
    constant.after_step(_taps(s), _taps(t), torch.zeros(2, 8, 8, dtype=torch.long), step=9)
    assert constant.d_optimizer.param_groups[0]["lr"] == pytest.approx(4e-4)  # CIRKD: constant


def test_optimizer_state_round_trips_through_state_dict():
    s, t = _pair()
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    first = build_term("skd_holistic", CTX, **SMALL)
    for step in range(2):
        first.after_step(_taps(s), _taps(t), labels, step)
    state = first.state_dict()
    assert "_extra_state" in state
    second = build_term("skd_holistic", CTX, **SMALL)
    second.load_state_dict(state)
    a, b = first.d_optimizer.state_dict(), second.d_optimizer.state_dict()
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        for name, value in a["state"][key].items():
            torch.testing.assert_close(b["state"][key][name], value)
    first.after_step(_taps(s), _taps(t), labels, 2)  # identical next step (hinge: no randomness)
    second.after_step(_taps(s), _taps(t), labels, 2)
    for p, q in zip(first.disc.parameters(), second.disc.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_discriminator_step_is_fp32_under_autocast():
    s = torch.randn(2, C, 4, 4, dtype=torch.bfloat16)
    t = torch.randn(2, C, 8, 8, dtype=torch.bfloat16)
    term = build_term("skd_holistic", CTX, **SMALL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        term.after_step(_taps(s), _taps(t), torch.zeros(2, 64, 64, dtype=torch.long), 0)
    assert term.last_d_loss.dtype == torch.float32


def test_batch_composition_in_eval_and_critic_minimum():
    # Training mode depends on the batch (D's BatchNorm statistics; test_contract.py checks that).
    s, t = _pair()
    term = build_term("skd_holistic", CTX, **SMALL)
    term.eval()  # running statistics, frozen spectral-norm vectors: per-image scores
    whole = term(_taps(s), _taps(t)).item()
    halves = (term(_taps(s[:1]), _taps(t[:1])).item() + term(_taps(s[1:]), _taps(t[1:])).item()) / 2
    assert whole == pytest.approx(halves, rel=1e-5)
    with torch.no_grad():  # at student = teacher the WGAN critic loss (without penalty) vanishes
        d = term.disc(t)
        assert critic_loss(d, term.disc(t.clone()), "wgan-gp").item() == pytest.approx(0.0, abs=1e-7)


def test_invalid_options_are_refused():
    with pytest.raises(ConfigError, match="loss='lsgan'"):
        build_term("skd_holistic", CTX, loss="lsgan")
    with pytest.raises(ConfigError, match="classes"):
        build_term("skd_holistic")


@pytest.mark.parametrize(
    ("preset", "terms"),
    [
        ("skd_paper", {"kd": "kd", "skd_pair": "skd_pair", "adv": "skd_holistic"}),
        ("ifvd_paper", {"kd": "kd", "ifvd": "ifvd", "adv": "skd_holistic"}),
        (
            "cwd_paper",
            {"kd": "kd", "cwd_logits": "cwd_logits", "cwd_feat": "cwd_feat", "adv": "skd_holistic"},
        ),
    ],
)
def test_presets_bundle_the_published_components(preset, terms, tmp_path):
    cfg = load_config([f"method={preset}", f"output_dir={tmp_path}"])
    assert {k: v.term or k for k, v in cfg.method.terms.items()} == terms
    assert cfg.method.terms["kd"].weight == 1.0 and cfg.method.terms["adv"].weight == 0.001  # CIRKD


@pytest.mark.slow
def test_resumed_run_matches_an_uninterrupted_one(tmp_path, teachers_dir):
    # D's weights, buffers, Adam moments and the gradient penalty's random mixes all resume exactly.
    common = [
        "method=skd_holistic",
        "method.terms.skd_holistic.loss=wgan-gp",
        "method.terms.skd_holistic.conv_dim=8",
        "method.terms.skd_holistic.weight=0.1",
        f"teachers_dir={teachers_dir}",
        "train.iterations=6",
        "train.checkpoint_interval=2",  # a multiple of the log interval: same history means
    ]
    full = train_run(tiny_config(tmp_path / "full", *common))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(tiny_config(tmp_path / "crash", *common), callbacks=[CrashAt(5)])  # resumes at 4
    resumed = Trainer(tiny_config(tmp_path / "crash", *common, "resume=true")).fit()
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["metrics"] == full["metrics"]
