"""Equal-budget tuning with Optuna, driven directly (no Hydra sweeper plugin).

- :mod:`.space`   search spaces from ``sweeps/``, validated against the composed config.
- :mod:`.study`   storage, study identity, budget accounting (a face over one-idea modules).
- :mod:`.runner`  trials (compose → train on the tuning split → score on the hold-out) and workers.
- :mod:`.finals`  the best configuration of each study retrained over seeds on the full split.

Worker processes, multi-GPU trials and the Slurm launcher are process management, in
:mod:`bench.workers`.
"""
