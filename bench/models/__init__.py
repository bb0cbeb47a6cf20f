"""Models: one registry of architectures (smp-based) and :func:`build_model` for presets.

Registering an architecture means one module in :mod:`bench.models.archs` decorating a builder
``(cfg, num_classes, encoder_weights) -> smp model`` with ``@MODELS.register("name")``; presets are
``conf/student/*.yaml`` and ``conf/teacher/*.yaml``.
"""

from __future__ import annotations

from bench.models.build import build_model
from bench.models.checkpoint import from_checkpoint
from bench.models.registry import MODELS
from bench.models.segmenter import Segmenter, count_parameters, pad_to_multiple
from bench.models.taps import Taps, upsample

__all__ = [
    "MODELS",
    "Segmenter",
    "Taps",
    "build_model",
    "count_parameters",
    "from_checkpoint",
    "pad_to_multiple",
    "upsample",
]
