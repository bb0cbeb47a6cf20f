"""The architecture registry: one module in :mod:`bench.models.archs` per family registers its builders."""

from __future__ import annotations

from bench.registry import Registry

MODELS: Registry = Registry("architecture", package="bench.models.archs")
