"""Process management: worker processes, multi-GPU trials and cluster jobs; no tuning logic.

- :mod:`.processes`  spawned worker processes, standby workers, stopping them on a signal.
- :mod:`.multi_gpu`  one trial on ``tune.gpus_per_trial`` processes under torchrun.
- :mod:`.local`      a sweep's workers on this machine.
- :mod:`.slurm`      a sweep's workers as a Slurm job array (submitit).
- :mod:`.launch`     the table that picks local or Slurm from ``launcher.name``.

Signals and exit codes every entry point shares are in :mod:`bench.utils.signals`.
"""
