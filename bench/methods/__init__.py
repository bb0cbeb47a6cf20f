"""KD methods: the registry of loss terms, and how a method config becomes a training objective.

A *method* is a config (``conf/method/<name>.yaml``) listing loss terms with weights; a *term* is one
registered module in :mod:`bench.methods.terms`. Compute any term on plain tensors::

    from bench.methods import build_term
    from bench.models import Taps
    kd = build_term("kd", temperature=4.0)
    loss = kd(Taps.from_logits(student_logits), Taps.from_logits(teacher_logits))
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config.messages import error_text
from bench.config.schema import RunConfig
from bench.errors import ConfigError
from bench.methods.base import LossTerm, TermContext
from bench.methods.objective import Objective, cross_entropy
from bench.methods.registry import TERMS


def build_term(name: str, ctx: TermContext | None = None, **params: Any) -> LossTerm:
    """A registered term with its parameters validated against the term's config class.

    ``ctx`` defaults to a context without channel information, enough for logit terms; terms with
    adapters need ``student_channels``/``teacher_channels``.
    """
    cls = TERMS.get(name)
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls.Config), params))
    except OmegaConfBaseException as e:
        raise ConfigError(f"term '{name}': {error_text(e, prefix=f'{name}.')}") from None
    return cls(cfg, ctx or TermContext(num_classes=0))


def needs_teacher(cfg: RunConfig) -> bool:
    """Whether any term of the run's method reads the teacher (else no teacher is loaded)."""
    return any(TERMS.get(t.term or k).needs_teacher for k, t in cfg.method.terms.items())


__all__ = ["TERMS", "LossTerm", "Objective", "TermContext", "build_term", "cross_entropy", "needs_teacher"]
