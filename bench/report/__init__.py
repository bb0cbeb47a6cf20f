"""The comparison report: final result rows → paired statistics → tables and figures.

- :mod:`.stats`    paired Δ vs the tuned baseline: t-interval (BCa from 10 seeds), p, Holm, MDE, under-tuning.
- :mod:`.simulate` the coverage of those intervals at 3, 5 and 10 seeds (``python -m bench.report.simulate``).
- :mod:`.table`    one row per method and study per dataset × student × teacher, the equal-terms check;
                   CSV, Markdown, LaTeX.
- :mod:`.curves`   expected best score after k trials (budget curves) and the crossover budget.
- :mod:`.figures`  the baseline-vs-KD gaps with CIs, tuning and budget curves (PDF and PNG).
"""
