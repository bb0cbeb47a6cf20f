"""``python -m bench.report`` (``make report``): comparison tables and figures from the final runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import DISK_ERRNOS, BenchError, unwritable_message
from bench.report.stats import BCA_MIN_SEEDS, CI_METHODS
from bench.utils.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--finals", type=Path, default=Path("results/finals"), help="final runs (make final)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="writes tables/ and figures/ here")
    parser.add_argument(
        "--ci",
        choices=CI_METHODS,
        default="t",
        help=f"95%% interval of Δ: paired t (default) or BCa bootstrap (from {BCA_MIN_SEEDS} seeds up)",
    )
    parser.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples (--ci bca)")
    parser.add_argument(
        "--study",
        action="append",
        default=[],
        metavar="PATTERN",
        help="use only the finals of studies matching this shell pattern (repeatable), e.g. '*/trials20'",
    )
    parser.add_argument(
        "--budgets",
        default="",
        metavar="N,N,...",
        help="one table per budget, e.g. 5,10,20 (trials) or 600s,1200s (seconds); default: every "
        "budget the finals hold (make final TRIALS=N per budget; the studies are shared)",
    )
    parser.add_argument(
        "--allow-mixed-code",
        action="store_true",
        help="accept finals of several commits or of a changed tree: the table's code column shows "
        "their versions and the flags say the mix was allowed (without it, such rows are flagged)",
    )
    parser.add_argument(
        "--correct-across",
        action="store_true",
        help="add p_holm_all: Holm over every KD method of every comparison (datasets × students × "
        "teachers) of a table, beside p_holm (one comparison); the Markdown table names both families",
    )
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="the study storage the finals' rows are checked against (default: the one each row "
        "records; needed when its password is masked or the studies moved)",
    )
    parser.add_argument(
        "--compute-finals",
        type=Path,
        default=Path("results/finals_compute"),
        help="compute-matched finals (make final-compute): Δ at equal compute beside Δ at equal iterations",
    )
    parser.add_argument(
        "--fidelity",
        type=Path,
        default=Path("results/fidelity"),
        help="make fidelity summaries: Spearman ρ of tuning vs final schedule per study",
    )
    args = parser.parse_args(argv)
    import matplotlib  # after parsing: --help answers without loading the plotting and study code
    import pandas as pd

    from bench.config.budget import Budget
    from bench.report.aggregate import write_aggregate
    from bench.report.compute import compute_table, side_by_side, write_compute_table
    from bench.report.console import console_tables
    from bench.report.fidelity import fidelity_flags, fidelity_table, write_fidelity_table
    from bench.report.figure_files import write_figures
    from bench.report.pruning import pruning_check, pruning_flags
    from bench.report.table import (
        budget_curves,
        choose_studies,
        comparisons,
        final_runs,
        flags,
        parse_budgets,
        write_tables,
    )
    from bench.report.tuning_curves import write_curves_table

    setup_logging()
    matplotlib.use("Agg")  # the report writes files; no display needed
    runs = final_runs(args.finals)
    if runs.empty:
        print(f"error: no final runs under {args.finals}; run `make final` first", file=sys.stderr)
        return 2
    try:
        from bench.preflight import check_writable
        from bench.report.verify import verify_runs

        check_writable(args.out)  # before the work: a folder it cannot make or write is one line

        verify_runs(runs, args.storage)  # an edited row, or one its study does not give, is refused
        tables = comparisons(
            runs,
            parse_budgets(args.budgets),
            n_resamples=args.resamples,
            ci=args.ci,
            studies=args.study,
            allow_mixed_code=args.allow_mixed_code,
            correct_across=args.correct_across,
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for table in tables.values():  # its own column (bench.report.pruning), beside budget_check
        table["pruning_check"] = pruning_check(table)
    compute = pd.DataFrame()
    fidelity = fidelity_table(args.fidelity)
    try:
        written = []
        for budget, table in tables.items():
            written.extend(write_tables(table, args.out / "tables", f"comparison_{budget}").values())
        # tables of budgets whose finals are gone would pass for current ones
        held = set(runs["budget"])
        for stale in sorted((args.out / "tables").glob("comparison_*.*")):
            if stale.stem.removeprefix("comparison_") not in held:
                stale.unlink()
                print(f"removed {stale} (no final runs at budget {stale.stem.removeprefix('comparison_')})")
        # comparison.*: the largest budget asked for (the main comparison), in any order; figures: one
        # set per budget (bench.report.figure_files)
        main_budget = max(tables, key=Budget.from_label)
        written.extend(write_tables(tables[main_budget], args.out / "tables").values())
        largest = choose_studies(runs[runs["budget"] == main_budget], args.study)
        figures, left_out = write_figures(runs, tables, args.out / "figures")
        written.extend(figures)
        written.extend(write_curves_table(budget_curves(largest), args.out / "tables"))
        # across comparisons (two or more dataset × student × teacher): IQM, P(improvement), profiles
        written.extend(write_aggregate(largest, args.out / "tables", args.out / "figures"))
        matched = final_runs(args.compute_finals) if args.compute_finals.is_dir() else pd.DataFrame()
        compute = compute_table(largest, matched)
        if not compute.empty:
            written.extend(write_compute_table(compute, args.out / "tables"))
        if not fidelity.empty:
            written.extend(write_fidelity_table(fidelity, args.out / "tables"))
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        print(f"error: {unwritable_message(e)}", file=sys.stderr)
        return 2
    print(console_tables(tables))  # one block per comparison, within the terminal's width
    if not compute.empty:
        print(f"\nequal iterations vs equal compute (budget {main_budget}):\n{side_by_side(compute)}")
    for budget, shown in tables.items():
        for line in [*flags(shown), *pruning_flags(shown)]:
            print(f"WARNING [{budget}]: {line}", file=sys.stderr)
    for line in fidelity_flags(fidelity):
        print(f"WARNING: {line}", file=sys.stderr)
    print("\n" + "\n".join(f"wrote {p}" for p in written))
    for line in left_out:
        print(f"figure {line}")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
