"""The registry of KD loss terms: one module in :mod:`bench.methods.terms` per term."""

from bench.registry import Registry

TERMS: Registry = Registry("KD loss term", package="bench.methods.terms")
