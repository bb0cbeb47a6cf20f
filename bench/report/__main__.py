"""``python -m bench.report`` (``make report``): comparison tables and figures from the final runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError
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
    from bench.report.fidelity import fidelity_flags, fidelity_table, write_fidelity_table
    from bench.report.figures import budget_curves_figure, gaps_figure, save_figure, tuning_curves_figure
    from bench.report.pruning import pruning_check, pruning_flags
    from bench.report.table import (
        COLUMNS,
        budget_curves,
        choose_studies,
        comparisons,
        final_runs,
        flags,
        parse_budgets,
        tuning_curves,
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
        from bench.report.verify import verify_runs

        verify_runs(runs, args.storage)  # an edited row, or one its study does not give, is refused
        tables = comparisons(
            runs,
            parse_budgets(args.budgets),
            n_resamples=args.resamples,
            ci=args.ci,
            studies=args.study,
            allow_mixed_code=args.allow_mixed_code,
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for table in tables.values():  # its own column (bench.report.pruning), beside budget_check
        table["pruning_check"] = pruning_check(table)
    written = []
    for budget, table in tables.items():
        written.extend(write_tables(table, args.out / "tables", f"comparison_{budget}").values())
    # tables of budgets whose finals are gone would pass for current ones
    held = set(runs["budget"])
    for stale in sorted((args.out / "tables").glob("comparison_*.*")):
        if stale.stem.removeprefix("comparison_") not in held:
            stale.unlink()
            print(f"removed {stale} (no final runs at budget {stale.stem.removeprefix('comparison_')})")
    # comparison.* and the figures: the largest budget asked for (the main comparison), in any order
    main_budget = max(tables, key=Budget.from_label)
    table = tables[main_budget]
    written.extend(write_tables(table, args.out / "tables").values())
    largest = runs[runs["budget"] == main_budget]
    figures = args.out / "figures"
    written.extend(save_figure(gaps_figure(table), figures / "gaps.png"))
    written.extend(save_figure(tuning_curves_figure(tuning_curves(largest)), figures / "tuning_curves.png"))
    written.extend(save_figure(budget_curves_figure(budget_curves(largest)), figures / "budget_curves.png"))
    written.extend(write_curves_table(budget_curves(largest), args.out / "tables"))
    # across comparisons (two or more dataset × student × teacher): IQM, P(improvement), profiles
    written.extend(write_aggregate(choose_studies(largest, args.study), args.out / "tables", figures))
    matched = final_runs(args.compute_finals) if args.compute_finals.is_dir() else pd.DataFrame()
    compute = compute_table(choose_studies(largest, args.study), matched)
    if not compute.empty:
        written.extend(write_compute_table(compute, args.out / "tables"))
        print(f"\nequal iterations vs equal compute (budget {main_budget}):\n{side_by_side(compute)}")
    fidelity = fidelity_table(args.fidelity)
    if not fidelity.empty:
        written.extend(write_fidelity_table(fidelity, args.out / "tables"))
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format
    ):
        for budget, shown in tables.items():
            print(f"\nbudget {budget}:")
            print(shown[[*COLUMNS[3:], "budget_check", "extra_dims"]].to_string(index=False))
            for line in [*flags(shown), *pruning_flags(shown)]:
                print(f"WARNING [{budget}]: {line}", file=sys.stderr)
    for line in fidelity_flags(fidelity):
        print(f"WARNING: {line}", file=sys.stderr)
    print("\n" + "\n".join(f"wrote {p}" for p in written))
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
