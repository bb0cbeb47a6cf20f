"""Cost measurements: ``python -m bench.perf.kd`` times every registered KD loss term."""
