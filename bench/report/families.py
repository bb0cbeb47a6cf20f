"""Which tests one Holm correction covers, and the sentence that says so in the Markdown table.

By default Holm's family is one comparison: the KD methods of one dataset × student × teacher
(``p_holm``). A claim over several comparisons ("KD helps on Cityscapes and on ADE20K") tests every
method of every comparison at once; ``make report ARGS=--correct-across`` adds ``p_holm_all``, Holm
over every KD row of the table (every dataset × student × teacher × method at one budget), beside
``p_holm``. Its family is larger, so ``p_holm_all`` ≥ ``p_holm``. A method whose test is undefined
(a non-finite seed, one seed) stays in the family at p = 1, as within a comparison.
"""

from __future__ import annotations

import pandas as pd

WITHIN = "Holm's family: the KD methods of each dataset × student × teacher (one comparison)"
ACROSS_COLUMN = "p_holm_all"


def correct_across(table: pd.DataFrame, holm_family) -> pd.DataFrame:
    """``table`` with :data:`ACROSS_COLUMN`: ``holm_family`` (the within-comparison rule, from
    :mod:`bench.report.table`) applied to every row of the table at once."""
    out = table.copy()
    out.insert(out.columns.get_loc("p_holm") + 1, ACROSS_COLUMN, holm_family(table.to_dict("records")))
    return out


def family_text(table: pd.DataFrame) -> str:
    """The family (or families) the table's adjusted p-values use, one sentence each."""
    if ACROSS_COLUMN not in table.columns:
        return WITHIN
    kd = int((table["method"] != "baseline").sum())
    groups = table.loc[table["method"] != "baseline", ["dataset", "student", "teacher"]].drop_duplicates()
    return (
        f"{WITHIN} for p_holm; {ACROSS_COLUMN}: every KD method of every comparison in this table "
        f"({kd} tests over {len(groups)} dataset × student × teacher comparisons, --correct-across)"
    )
