"""The registry of datasets: one module in :mod:`bench.data.sets` per dataset."""

from bench.registry import Registry

DATASETS: Registry = Registry("dataset", package="bench.data.sets")
