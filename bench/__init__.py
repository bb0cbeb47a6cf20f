"""segkd-bench: a fair, reproducible benchmark harness for knowledge distillation in segmentation.

Data flows config → run → result row → table:

- :mod:`bench.config`  composes and validates a run config (Hydra + structured schemas).
- :mod:`bench.data`, :mod:`bench.models`, :mod:`bench.methods`  the three registries.
- :mod:`bench.engine`  trains one run; :mod:`bench.evaluation` scores it.
- :mod:`bench.results`  writes one result row per run.
"""

__version__ = "0.1.0"
