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
    args = parser.parse_args(argv)
    import matplotlib  # after parsing: --help answers without loading the plotting and study code

    from bench.report.console import console_tables
    from bench.report.figure_files import write_figures
    from bench.report.table import comparisons, final_runs, flags, parse_budgets, write_tables

    setup_logging()
    matplotlib.use("Agg")  # the report writes files; no display needed
    runs = final_runs(args.finals)
    if runs.empty:
        print(f"error: no final runs under {args.finals}; run `make final` first", file=sys.stderr)
        return 2
    try:
        tables = comparisons(
            runs, parse_budgets(args.budgets), n_resamples=args.resamples, ci=args.ci, studies=args.study
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        written = []
        for budget, table in tables.items():
            written.extend(write_tables(table, args.out / "tables", f"comparison_{budget}").values())
        # comparison.*: the largest budget asked for (the main comparison); figures: one per budget
        written.extend(write_tables(tables[list(tables)[-1]], args.out / "tables").values())
        figures, left_out = write_figures(runs, tables, args.out / "figures")
        written.extend(figures)
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        print(f"error: {unwritable_message(e)}", file=sys.stderr)
        return 2
    print(console_tables(tables))  # one block per comparison, within the terminal's width
    for budget, shown in tables.items():
        for line in flags(shown):
            print(f"WARNING [{budget}]: {line}", file=sys.stderr)
    print("\n" + "\n".join(f"wrote {p}" for p in written))
    for line in left_out:
        print(f"figure {line}")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
