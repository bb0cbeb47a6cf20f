"""The comparison report: final result rows → paired statistics → tables and figures.

- :mod:`.stats`    paired Δ vs the tuned baseline: t-interval (BCa from 10 seeds), p, Holm, MDE, under-tuning.
- :mod:`.simulate` the coverage of those intervals at 3, 5 and 10 seeds (``python -m bench.report.simulate``).
- :mod:`.table`    one row per method and study per dataset × student × teacher, the equal-terms check;
                   CSV, Markdown, LaTeX.
- :mod:`.figures`  the baseline-vs-KD gaps with CIs and best-so-far tuning curves (PNG).
"""
