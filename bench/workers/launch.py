"""Where a sweep's workers run: a table from ``launcher.name`` to the function that runs them.

The tuning logic hands over a :class:`Work` (each worker's studies, the worker loop, and what to do
when workers are stopped or waited on); this package knows processes and schedulers, not studies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.errors import ConfigError
from bench.workers import local, slurm
from bench.workers.processes import Worker
from bench.workers.work import Work

LAUNCHERS: dict[str, Callable[[Work, Sequence[Worker]], None]] = {
    "local": local.run,
    "slurm": slurm.run,
    "submitit_local": slurm.run,  # submitit's local executor: the Slurm path without Slurm (tests)
}


def launch(work: Work, standby: Sequence[Worker] = ()) -> None:
    """Run the sweep's workers with ``launcher.name``'s launcher; ``standby``: local worker processes
    already started (:func:`bench.workers.processes.standby_workers`), dismissed where not used."""
    name = work.cfg.launcher.name
    if name not in LAUNCHERS:
        raise ConfigError(f"launcher.name='{name}'; valid: {', '.join(LAUNCHERS)}")
    LAUNCHERS[name](work, standby)
