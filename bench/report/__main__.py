"""``python -m bench.report`` (``make report``): comparison tables and figures from the final runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import pandas as pd

from bench.cli import setup_logging
from bench.report.figures import gaps_figure, save_figure, tuning_curves_figure
from bench.report.table import COLUMNS, comparison, final_runs, tuning_curves, write_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--finals", type=Path, default=Path("results/finals"), help="final runs (make final)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="writes tables/ and figures/ here")
    parser.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples for the Δ CI")
    args = parser.parse_args(argv)
    setup_logging()
    matplotlib.use("Agg")  # the report writes files; no display needed
    runs = final_runs(args.finals)
    if runs.empty:
        print(f"error: no final runs under {args.finals}; run `make final` first", file=sys.stderr)
        return 2
    table = comparison(runs, n_resamples=args.resamples)
    paths = write_tables(table, args.out / "tables")
    gaps = save_figure(gaps_figure(table), args.out / "figures" / "gaps.png")
    curves = save_figure(
        tuning_curves_figure(tuning_curves(runs)), args.out / "figures" / "tuning_curves.png"
    )
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format
    ):
        print(table[COLUMNS[3:]].to_string(index=False))
    unequal = table[table["budget_check"] != "ok"]
    for r in unequal.itertuples():
        print(f"WARNING: {r.dataset}/{r.student}/{r.teacher}/{r.method}: {r.budget_check}", file=sys.stderr)
    print("\n" + "\n".join(f"wrote {p}" for p in [*paths.values(), gaps, curves]))
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
