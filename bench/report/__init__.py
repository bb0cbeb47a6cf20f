"""The comparison report: final result rows → paired statistics → tables and figures.

- :mod:`.stats`    paired Δ vs the tuned baseline, bootstrap CI, p-value, the under-tuning flag.
- :mod:`.table`    one row per method per dataset × student × teacher; CSV, Markdown, LaTeX.
- :mod:`.figures`  the baseline-vs-KD gaps with CIs and best-so-far tuning curves (PNG).
"""
