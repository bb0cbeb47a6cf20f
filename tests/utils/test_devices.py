"""Worker placement: threads from the CPU affinity, several workers per GPU."""

import os

import pytest

from bench.errors import ConfigError
from bench.utils.devices import available_cpus, worker_slots


def test_threads_come_from_the_affinity_not_the_host():
    if hasattr(os, "sched_getaffinity"):
        assert available_cpus() == len(os.sched_getaffinity(0))
    assert [s.threads for s in worker_slots(2, 0, cpus=16)] == [8, 8]
    assert [s.threads for s in worker_slots(3, 0, cpus=2)] == [1, 1, 1]  # at least one each


def test_gpus_are_shared_by_workers_per_gpu():
    devices = lambda slots: [s.overrides for s in slots]  # noqa: E731
    assert devices(worker_slots(4, 1, cpus=8)) == [()] * 4  # one GPU, one worker each: device=auto
    assert devices(worker_slots(4, 2, workers_per_gpu=2, cpus=8)) == [
        ("device=cuda:0",),
        ("device=cuda:0",),
        ("device=cuda:1",),
        ("device=cuda:1",),
    ]
    assert devices(worker_slots(3, 2, cpus=8)) == [("device=cuda:0",), ("device=cuda:1",), ("device=cuda:0",)]
    assert devices(worker_slots(2, 1, workers_per_gpu=2, cpus=8)) == [("device=cuda:0",)] * 2
    with pytest.raises(ConfigError, match="workers_per_gpu=0"):
        worker_slots(2, 1, workers_per_gpu=0)


def test_multi_gpu_trials_get_disjoint_gpu_sets():
    devices = lambda slots: [s.overrides for s in slots]  # noqa: E731
    # worker i gets GPUs 2i, 2i+1: a trial on device=cuda:K runs on K … K+N-1
    assert devices(worker_slots(3, 6, gpus_per_trial=2, cpus=8)) == [
        ("device=cuda:0",),
        ("device=cuda:2",),
        ("device=cuda:4",),
    ]
    assert devices(worker_slots(1, 8, gpus_per_trial=4, cpus=8)) == [()]  # GPUs 0-3 with device=auto
    assert devices(worker_slots(4, 4, workers_per_gpu=2, gpus_per_trial=2, cpus=8)) == [
        ("device=cuda:0",),
        ("device=cuda:0",),
        ("device=cuda:2",),
        ("device=cuda:2",),
    ]
    assert devices(worker_slots(2, 0, gpus_per_trial=2, cpus=8)) == [()] * 2  # CPU: gloo processes
    with pytest.raises(ConfigError, match=r"tune.workers=3 × tune.gpus_per_trial=2 needs 6 GPUs, but 4"):
        worker_slots(3, 4, gpus_per_trial=2)  # never shared round-robin, unlike one-GPU trials
    with pytest.raises(ConfigError, match=r"tune.gpus_per_trial=0"):
        worker_slots(1, 4, gpus_per_trial=0)
