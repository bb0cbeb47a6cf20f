"""The objective shared by every method: task loss, term weights, schedules and term hooks."""

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from bench.config.schema import MethodConfig, TermConfig, WeightScheduleConfig
from bench.errors import ConfigError
from bench.methods import TERMS, Objective, TermContext, cross_entropy
from bench.methods.base import LossTerm
from bench.methods.objective import schedule_multiplier
from bench.methods.terms.kd import KDConfig
from bench.models import Taps


def _taps(c=3, h=4, w=4, aux=True):
    logits = torch.randn(2, c, h, w, requires_grad=True)
    return Taps(
        stages=[],
        feat=None,
        logits_low=logits,
        aux_logits=torch.randn(2, c, h, w) if aux else None,
        size=(8, 8),
    )


def _labels():
    return torch.randint(0, 3, (2, 8, 8))


def test_task_loss_is_ce_plus_weighted_aux():
    s, labels = _taps(), _labels()
    obj = Objective(MethodConfig(name="baseline"), TermContext(num_classes=3, aux_weight=0.4))
    total, parts = obj(s, None, labels, step=0)
    ce = cross_entropy(s.logits, labels, 255)
    aux = cross_entropy(s.aux_logits, labels, 255)
    torch.testing.assert_close(parts, torch.stack([ce, 0.4 * aux]).detach())
    torch.testing.assert_close(total, ce + 0.4 * aux)


def test_cross_entropy_with_no_valid_pixel_is_zero_not_nan():
    labels = torch.full((2, 8, 8), 255)
    assert cross_entropy(torch.randn(2, 3, 8, 8), labels, 255).item() == 0.0


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        (None, 50, 1.0),
        (WeightScheduleConfig("constant", 0.5, 9.0), 50, 0.5),
        (WeightScheduleConfig("linear", 1.0, 0.0), 25, 0.75),
        (WeightScheduleConfig("stairs", 0.0, 1.0, stages=4), 49, 0.25),  # floor(0.49·4)/4
        (WeightScheduleConfig("stairs", 0.0, 1.0, stages=120), 99, 118 / 120),  # AICSD ALW α, last epoch
    ],
)
def test_schedule_multiplier(schedule, step, expected):
    assert schedule_multiplier(schedule, step, total_steps=100) == pytest.approx(expected)


def test_term_weight_and_schedules_apply():
    s, t, labels = _taps(), _taps(), _labels()
    kd = KDConfig(weight=2.0, schedule=WeightScheduleConfig("linear", 1.0, 0.0))
    method = MethodConfig(name="m", terms={"kd": kd}, task_schedule=WeightScheduleConfig("linear", 0.0, 1.0))
    obj = Objective(method, TermContext(num_classes=3, total_steps=10, aux_weight=0.4))
    _, parts = obj(s, t, labels, step=5)
    base = Objective(MethodConfig(name="b"), TermContext(num_classes=3, aux_weight=0.4))
    _, base_parts = base(s, None, labels, step=5)
    torch.testing.assert_close(parts[:2], 0.5 * base_parts)  # task multiplier 0.5 at half-way
    raw = TERMS.get("kd")(kd, obj.ctx)(s, t, labels, 5)
    torch.testing.assert_close(parts[2], 2.0 * 0.5 * raw.detach())


def test_unknown_schedule_shape_is_an_error():
    method = MethodConfig(name="m", task_schedule=WeightScheduleConfig("zigzag"))
    with pytest.raises(ConfigError, match="zigzag"):
        Objective(method, TermContext(num_classes=3))


@dataclass
class _HookConfig(TermConfig):
    bound_mb: float = 0.0


@TERMS.register("_test_hooks")
class _Hooks(LossTerm):
    """A term with an adapter, a private network, a task-loss replacement and a memory estimate."""

    Config = _HookConfig
    needs_teacher = False
    replaces_task_loss = True

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.adapter = nn.Conv2d(3, 3, 1)
        self.critic = nn.Linear(3, 1)
        self.steps_seen = []

    def forward(self, student, teacher, labels=None, step=0):
        return self.adapter(student.logits_low).pow(2).mean()

    def student_parameters(self):
        return list(self.adapter.parameters())

    def after_step(self, student, teacher, labels, step):
        self.steps_seen.append(step)

    def estimate_memory_mb(self):
        return self.cfg.bound_mb


def test_term_hooks():
    method = MethodConfig(name="m", terms={"h": _HookConfig(term="_test_hooks", weight=3.0)})
    obj = Objective(method, TermContext(num_classes=3, aux_weight=0.4))
    ids = {id(p) for p in obj.student_parameters()}
    assert ids == {id(p) for p in obj.terms["h"].adapter.parameters()}  # critic is not the student's
    _, parts = obj(_taps(), None, _labels(), 0)
    assert parts[0] == 0 and parts[1] == 0 and parts[2] > 0  # plain CE replaced
    obj.after_step(_taps(), None, _labels(), 7)
    assert obj.terms["h"].steps_seen == [7]


def test_memory_bound_is_checked_at_start():
    method = MethodConfig(name="m", terms={"h": _HookConfig(term="_test_hooks", bound_mb=1e6)})
    method.memory_limit_mb = 1024
    with pytest.raises(ConfigError, match=r"term 'h' needs about 1000000 MB.*memory_limit_mb=1024"):
        Objective(method, TermContext(num_classes=3))


def test_two_task_loss_replacements_are_refused():
    terms = {k: _HookConfig(term="_test_hooks") for k in ("a", "b")}
    with pytest.raises(ConfigError, match="replace the task loss"):
        Objective(MethodConfig(name="m", terms=terms), TermContext(num_classes=3))


def test_parts_are_finite_fp32():
    _, parts = Objective(MethodConfig(name="b"), TermContext(num_classes=3))(_taps(), None, _labels(), 0)
    assert parts.dtype == torch.float32 and all(math.isfinite(p) for p in parts.tolist())
