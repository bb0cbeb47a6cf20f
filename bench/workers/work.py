"""What a sweep hands its workers: the interface between the tuning logic and the launchers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.config.schema import RunConfig


@dataclass
class Work:
    """What a sweep hands its workers, whichever launcher runs them."""

    cfg: RunConfig  # the first study's config: tune.workers, tune.storage, launcher.*, device
    name: str  # the first study's name (job names and log lines)
    rotations: Callable[[int], list[list[list[str]]]]  # n workers → each one's studies, as overrides
    work_on: Callable[[list[list[str]]], None]  # one worker over its studies (module level: it is pickled)
    on_stopped: Callable[[set[int]], None]  # local: mark the trials of worker processes that were stopped
    status: Callable[[], dict[str, str]]  # a cluster sweep waited on: one status line per study
