"""The comparison report: final result rows → paired statistics → tables and figures.

- :mod:`.stats`    paired Δ vs the tuned baseline: t-interval (BCa from 10 seeds), p, Holm, MDE, under-tuning.
- :mod:`.simulate` the coverage of those intervals at 3, 5 and 10 seeds (``python -m bench.report.simulate``).
- :mod:`.table`    one row per method and study per dataset × student × teacher, the equal-terms check;
                   CSV, Markdown, LaTeX.
- :mod:`.tuning_curves` tuning curves with exact bands (opda) and the crossover budget with its interval.
- :mod:`.curves`   Dodge et al.'s expected best after k trials (the former estimator, for comparison).
- :mod:`.aggregate` IQM, probability of improvement and performance profiles across comparisons.
- :mod:`.compute`  Δ at equal iterations beside Δ at equal compute (compute-matched finals).
- :mod:`.fidelity` Spearman ρ of tuning vs final schedule (``make fidelity``).
- :mod:`.pruning`  comparisons whose pruned fractions differ.
- :mod:`.figures`  the baseline-vs-KD gaps with CIs, tuning and budget curves (PDF and PNG).
"""
