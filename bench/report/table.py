"""The comparison table: one row per method per dataset × student × teacher, each from one study.

A row holds the finals of exactly one study (name and settings hash, recorded by every final run):
finals of two studies of one method never share a row — the report stops and names both, and
``--study`` chooses. Every row is then checked for equal terms with its baseline
(:func:`equal_terms`); what differs is written to ``budget_check`` and listed by :func:`flags`.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.config.budget import Budget
from bench.errors import BenchError, ConfigError
from bench.report import families, finals_terms, identity_terms, published
from bench.report.compute_check import compute_problems
from bench.report.pruning import pruned_problem
from bench.report.selection import selection_problems
from bench.report.stats import BCA_MIN_SEEDS, holm, paired_delta, undertuned, undertuned_tail
from bench.report.tuning_curves import method_crossover
from bench.results import RESULT_FILE, read_row
from bench.teacher_split import report_problem
from bench.tune.study import settings_hash
from bench.utils.io import write_text_atomic

COLUMNS = [
    "dataset",
    "student",
    "teacher",
    "method",
    "budget_kind",
    "trials",
    "repeats",
    "seeds",
    "miou_mean",
    "miou_std",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "p_holm",
    "mde",
    "tune_seconds",
    "pruned_frac",
    "step_time_ms",
    "peak_mem_mb",
    "teacher_miou",
    "undertuned",
    "crossover_trials",
]
EXTRA = [
    "crossover_ci",  # 95% interval of crossover_trials (exact tuning-curve bands, bench.report.tuning_curves)
    "budget_check",
    "extra_dims",
    "ci_method",
    "holdout_miou",
    "default_holdout_miou",
    "budget",
    "study",
    "settings_hash",
    "teacher_sha256",
    "code",
    "protocol",  # the protocol preset of the finals (reproduction.protocol), "" for none
    *published.COLUMNS,  # the published result of this comparison (bench.report.published), NaN: none
    "published_source",
]
# Study settings that must be identical for every method of a comparison.
SHARED_SETTINGS = (
    "budget",
    "sampler",
    "sampler_seed",
    "pruner",
    "pruner_startup_trials",
    "pruner_warmup_steps",
    "trial_iterations",
    "val_interval",
    "protocol_hash",
)


# What :mod:`bench.report.finals_terms` compares of each final besides its config.
FINAL_FACTS = (
    "config",
    "threads",
    "device_name",
    "commit",
    "dirty",
    "diff_sha256",
    "weights_sha256",
    "data",
    "selection",
)


class ReportError(BenchError):
    """Final runs that cannot be put in one table as they are (mixed studies, duplicate seeds)."""


@dataclass
class MethodResult:
    """One method's finals of one study: its table row and what the checks need besides it."""

    row: dict[str, Any]  # the public columns (COLUMNS + EXTRA)
    scores: dict[int, float]  # final mIoU (%) per seed
    holdout_values: list[float | None]  # each counted trial's hold-out score (empty: older finals)
    tuning: list[dict[str, Any]]  # each final run's tuning record
    teachers: set[str | None]  # the teacher checkpoints the finals used
    finals: list[dict[str, Any]] = field(default_factory=list)  # each final's config, threads, code

    @property
    def tuned_keys(self) -> list[str]:
        """The config keys the study tuned (shared and the method's own search space)."""
        space = self.tuning[0]["settings"].get("space") or {}
        return [k for part in ("shared", "method") for k in (space.get(part) or {})]

    @property
    def method(self) -> str:
        return self.row["method"]


def final_runs(finals_dir: Path) -> pd.DataFrame:
    """One line per final run (rows written by ``make final``)."""
    records = []
    for path in sorted(Path(finals_dir).rglob(RESULT_FILE)):
        row = read_row(path)
        tuning = row.get("tuning") or {}
        if not tuning:
            continue
        teacher = row.get("teacher_checkpoint") or {}
        env = row.get("environment") or {}
        records.append(
            {
                "dataset": row["dataset"],
                "student": row["student"],
                "teacher": row["teacher"],
                "method": row["method"],
                "seed": row["seed"],
                "miou": row["metrics"]["miou"],  # percent: read_row converts rows in fractions
                "step_time_ms": row["cost"]["step_time_ms"],
                "peak_mem_mb": row["cost"]["peak_mem_mb"],
                "budget": Budget.from_dict(_budget(tuning)).label,
                "repeat": tuning.get("repeat", tuning["settings"].get("repeat", 0)),
                "study": tuning["study"],
                "settings_hash": tuning.get("settings_hash") or settings_hash(tuning["settings"]),
                "teacher_sha256": teacher.get("sha256"),
                "path": str(path),
                "tuning": tuning,
                "config": row.get("config"),
                "threads": env.get("torch_threads"),
                "device_name": env.get("device_name"),
                "commit": (env.get("git") or {}).get("commit"),
                "dirty": (env.get("git") or {}).get("dirty"),
                "diff_sha256": (env.get("git") or {}).get("diff_sha256"),
                "weights_sha256": (row.get("model") or {}).get("encoder_weights_sha256"),
                "data": row.get("data"),  # {split: fingerprint} (bench.report.identity_terms)
                "selection": row.get("selection"),  # older rows: none, the last model's scores
            }
        )
    return pd.DataFrame.from_records(records)


def _budget(tuning: dict[str, Any]) -> dict[str, Any]:
    """The budget a final run's comparison was made at (older finals: the study's settings)."""
    return tuning.get("budget") or tuning["settings"]["budget"]


def parse_budgets(text: str) -> list[Budget]:
    """``--budgets 5,10,20`` (trials) or ``600s,1200s`` (training seconds)."""
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        try:
            out.append(Budget.from_amount(item))
        except ConfigError:
            raise ReportError(
                f"--budgets '{text}': '{item}' is neither a trial count (20) nor seconds (600s)"
            ) from None
    return out


def comparisons(runs: pd.DataFrame, budgets: Sequence[Budget] = (), **kwargs: Any) -> dict[str, pd.DataFrame]:
    """One comparison table per budget (default: every budget the finals hold), keyed by the
    budget's label, each from the same studies' prefixes at that budget."""
    found = [b.label for b in sorted(map(Budget.from_label, set(runs["budget"])))] if not runs.empty else []
    budgets = [b.label for b in budgets]
    missing = [b for b in budgets if b not in found]
    if missing:
        raise ReportError(
            f"no final runs at budget {', '.join(missing)} (finals hold: {', '.join(found) or 'none'}); "
            "run `make final TRIALS=N` (or BUDGET=time:S) for each budget first — the studies are reused"
        )
    return {b: comparison(runs[runs["budget"] == b], **kwargs) for b in (budgets or found)}


def choose_studies(runs: pd.DataFrame, patterns: Sequence[str]) -> pd.DataFrame:
    """Keep the finals of studies whose name matches one of ``patterns`` (shell-style, e.g. ``*/trials6``)."""
    if not patterns or runs.empty:
        return runs
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(s, pattern) for s in runs["study"]):
            known = ", ".join(sorted(set(runs["study"])))
            raise ReportError(f"--study '{pattern}' matches no study of the final runs; studies: {known}")
    keep = runs["study"].map(lambda s: any(fnmatch.fnmatchcase(s, p) for p in patterns))
    return runs[keep]


def check_identity(runs: pd.DataFrame) -> None:
    """One study per method, group and repeat, one final run per seed; otherwise a :class:`ReportError`."""
    keys = ["dataset", "student", "teacher", "method", "repeat"]
    for key, part in runs.groupby(keys, dropna=False, sort=True):
        studies = part.drop_duplicates(["study", "settings_hash"])
        if len(studies) > 1:
            a, b = studies.iloc[0], studies.iloc[1]
            raise ReportError(
                f"the finals of method '{key[3]}' ({key[0]}/{key[1]}) come from {len(studies)} studies: "
                f"'{a.study}' (settings {a.settings_hash}, e.g. {a.path}) and '{b.study}' (settings "
                f"{b.settings_hash}, e.g. {b.path}); one row needs one study: choose with "
                f"--study '{a.study}' (a shell pattern; repeat for other methods) or move the other "
                "study's finals away"
            )
        dup = part[part.duplicated("seed", keep=False)].sort_values("seed")
        if not dup.empty:
            raise ReportError(
                f"study '{part.study.iloc[0]}' has {len(dup)} final runs for seed {dup.seed.iloc[0]}: "
                f"{', '.join(dup.path)}; keep one (e.g. finals of two storages holding one study name)"
            )


def comparison(
    runs: pd.DataFrame,
    n_resamples: int = 10000,
    ci: str = "t",
    studies: Sequence[str] = (),
    allow_mixed_code: bool = False,
    correct_across: bool = False,
) -> pd.DataFrame:
    """The comparison table from :func:`final_runs` (mIoU and Δ in percentage points).

    ``allow_mixed_code``: finals of several commits or of a changed tree are not flagged; the
    ``code`` column shows their versions and :func:`flags` says the mix was allowed.
    ``correct_across``: a ``p_holm_all`` column, Holm over every KD method of every comparison
    (:mod:`bench.report.families`).
    """
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS + EXTRA)
    runs = choose_studies(runs, studies)
    if runs["budget"].nunique() > 1:
        raise ReportError(
            f"the final runs hold several budgets ({', '.join(sorted(set(runs['budget'])))}); one table "
            "per budget: comparisons(runs) or `make report BUDGETS=...`"
        )
    check_identity(runs)
    out = []
    for dataset, student, teacher in _groups(runs):
        same = (runs["dataset"] == dataset) & (runs["student"] == student)
        members = runs[same & ((runs["teacher"] == teacher) | (runs["method"] == "baseline"))]
        per_repeat = {
            repeat: _repeat_results(dataset, student, teacher, part, n_resamples, ci, allow_mixed_code)
            for repeat, part in members.groupby("repeat", sort=True)
        }
        if len(per_repeat) == 1:
            rows = [m.row for m in next(iter(per_repeat.values()))]
        else:
            rows = aggregate_repeats(per_repeat)
        _flag_non_finite(rows, members)
        out.extend({**r, "p_holm": adjusted} for r, adjusted in zip(rows, holm_family(rows), strict=True))
    published.add_columns(out, runs)
    table = pd.DataFrame.from_records(out, columns=COLUMNS + EXTRA)
    return families.correct_across(table, holm_family) if correct_across else table


HOLM_FAMILY = families.WITHIN


def holm_family(rows: list[dict[str, Any]]) -> list[float]:
    """Holm-adjusted p-values over every KD method of one comparison. A method whose test is
    undefined (a non-finite seed, one seed) stays in the family at p = 1, so it cannot shrink the
    family and flatter the others; its own ``p_holm`` stays NaN."""
    kd = [r["method"] != "baseline" for r in rows]
    p = [
        (1.0 if math.isnan(r["p_value"]) else r["p_value"]) if is_kd else math.nan
        for r, is_kd in zip(rows, kd, strict=True)
    ]
    return [
        a if is_kd and not math.isnan(r["p_value"]) else math.nan
        for r, is_kd, a in zip(rows, kd, holm(p), strict=True)
    ]


def _flag_non_finite(rows: list[dict[str, Any]], members: pd.DataFrame) -> None:
    """Name, in ``budget_check``, every non-finite final mIoU (a diverged seed): the row's own, and
    the baseline's in every KD row it is compared with. Their Δ and test are undefined."""
    bad = members[~np.isfinite(members["miou"].astype(float))]
    seeds = {m: sorted(set(part["seed"])) for m, part in bad.groupby("method")}

    def at(m: str) -> str:
        return ", ".join(str(s) for s in seeds[m])

    for r in rows:
        reasons = []
        if r["method"] in seeds:
            reasons.append(f"non-finite final mIoU at seed {at(r['method'])}")
        if r["method"] != "baseline" and "baseline" in seeds:
            reasons.append(f"the baseline's final mIoU is non-finite at seed {at('baseline')}")
        if reasons:
            r["budget_check"] = "; ".join(
                [*([] if r["budget_check"] == "ok" else [r["budget_check"]]), *reasons]
            )


def _groups(runs: pd.DataFrame) -> list[tuple[str, str, str | None]]:
    """Each dataset × student × teacher of the KD finals; a dataset × student with a baseline only
    (no KD finals yet) is a group of its own, teacher None."""
    teachers: dict[tuple[str, str], set[str]] = {}
    for r in runs.itertuples():
        found = teachers.setdefault((r.dataset, r.student), set())
        if r.method != "baseline" and isinstance(r.teacher, str):
            found.add(r.teacher)
    return [(d, s, t) for (d, s), names in sorted(teachers.items()) for t in (sorted(names) or [None])]


def _repeat_results(
    dataset: str,
    student: str,
    teacher: str | None,
    members: pd.DataFrame,
    n_resamples: int,
    ci: str,
    allow_mixed_code: bool = False,
) -> list[MethodResult]:
    """The rows of one repeat: each method against that repeat's baseline, checked for equal terms."""
    baseline = members[members["method"] == "baseline"]
    base_scores = dict(zip(baseline["seed"], baseline["miou"], strict=True))
    results = [
        _result(dataset, student, teacher, method, part, base_scores, n_resamples, ci)
        for method, part in members.groupby("method", sort=True)
    ]
    results.sort(key=lambda m: (m.method != "baseline", m.method))
    add_crossover(results)
    for m, problems in zip(results, equal_terms(results, allow_mixed_code), strict=True):
        m.row["budget_check"] = "; ".join(problems) if problems else "ok"
    return results


def aggregate_repeats(per_repeat: dict[int, list[MethodResult]]) -> list[dict[str, Any]]:
    """One row per method over R independent studies (repeats), tuning variance included.

    The model: a paired comparison of repeat means. Repeat r of a method and of the baseline share
    their sampler and hold-out seeds; d_r = (method's mean over the final seeds of its repeat-r
    study) − (the baseline's, repeat r). Δ is the mean of d_r, its interval and p-value the paired
    t over the R repeats (R − 1 degrees of freedom), so the spread of what tuning selected in each
    repeat — not only the seed noise of one selection — sets the interval. ``miou_mean``/``miou_std``
    are over all repeats × seeds; ``budget_check`` lists each repeat's problems (``r1: …``);
    ``crossover_trials`` uses the expected-best curves averaged over the repeats.
    """
    repeats = sorted(per_repeat)
    by_method: dict[str, dict[int, MethodResult]] = {}
    for repeat, results in per_repeat.items():
        for m in results:
            by_method.setdefault(m.method, {})[repeat] = m
    base = by_method.get("baseline", {})
    base_means = {k: np.mean(list(m.scores.values())) for k, m in base.items()}
    out = []
    for method, results in sorted(by_method.items(), key=lambda m: (m[0] != "baseline", m[0])):
        reps = {k: m.row for k, m in results.items()}
        first = reps[min(reps)]
        scores_all = [v for m in results.values() for v in m.scores.values()]
        means = {k: np.mean(list(m.scores.values())) for k, m in results.items()}
        d = paired_delta(means, base_means, ci="t")
        problems = [
            f"r{k}: {r['budget_check']}" for k, r in sorted(reps.items()) if r["budget_check"] != "ok"
        ]
        if sorted(reps) != repeats:
            problems.append(f"repeats {sorted(reps)} vs the comparison's {repeats}")
        is_base = method == "baseline"
        row = {
            **first,
            "repeats": len(reps),
            "miou_mean": float(np.mean(scores_all)),
            "miou_std": float(np.std(scores_all, ddof=1)) if len(scores_all) > 1 else math.nan,
            "delta": 0.0 if is_base else d.delta,
            "delta_ci_low": math.nan if is_base else d.ci_low,
            "delta_ci_high": math.nan if is_base else d.ci_high,
            "p_value": math.nan if is_base else d.p_value,
            "mde": math.nan if is_base else d.mde,
            "tune_seconds": float(np.mean([r["tune_seconds"] for r in reps.values()])),
            "pruned_frac": float(np.mean([r["pruned_frac"] for r in reps.values()])),
            "undertuned": any(r["undertuned"] for r in reps.values()),
            "holdout_miou": float(np.mean([r["holdout_miou"] for r in reps.values()])),
            "ci_method": "" if is_base else ("none (constant Δ)" if d.constant else "t over repeats"),
            "budget_check": "; ".join(problems) or "ok",
            "study": "; ".join(r["study"] for _, r in sorted(reps.items())),
            "settings_hash": "; ".join(r["settings_hash"] for _, r in sorted(reps.items())),
            "crossover_trials": "",
            "code": "; ".join(sorted({r["code"] for r in reps.values()})),
            "crossover_ci": "",
        }
        if not is_base and base:
            row.update(
                _crossover_columns(
                    [base[k].holdout_values for k in sorted(base)],
                    [results[k].holdout_values for k in sorted(results)],
                )
            )
        out.append(row)
    return out


def _crossover_columns(base: list[Any], method: list[Any]) -> dict[str, str]:
    """``crossover_trials`` and ``crossover_ci`` from the studies' per-trial scores (repeats pooled)."""
    c = method_crossover(base, method)
    return {"crossover_trials": c.label(), "crossover_ci": c.interval()} if c else {}


def _result(
    dataset: str,
    student: str,
    teacher: str | None,
    method: str,
    part: pd.DataFrame,
    base_scores: dict[int, float],
    n_resamples: int,
    ci: str,
) -> MethodResult:
    tuning = part["tuning"].iloc[0]
    scores = dict(zip(part["seed"], part["miou"], strict=True))
    is_base = method == "baseline"
    if not is_base and ci == "bca" and len(set(scores) & set(base_scores)) < BCA_MIN_SEEDS:
        raise ReportError(
            f"--ci bca needs at least {BCA_MIN_SEEDS} paired seeds; '{method}' has "
            f"{len(set(scores) & set(base_scores))} (SEEDS={BCA_MIN_SEEDS} make final), or use the "
            "default t-interval"
        )
    d = paired_delta(scores, base_scores, ci=ci, n_resamples=n_resamples)
    values = np.array(list(scores.values()))
    std = values.std(ddof=1) if len(values) > 1 else math.nan
    space = tuning["settings"].get("space") or {}
    nan = math.nan
    row = {
        "dataset": dataset,
        "student": student,
        "teacher": teacher,
        "method": method,
        "budget_kind": tuning["settings"]["budget"]["kind"],
        "trials": tuning["trials"],
        "seeds": len(scores),
        "miou_mean": values.mean(),
        "miou_std": std,
        "delta": 0.0 if is_base else d.delta,
        "delta_ci_low": nan if is_base else d.ci_low,
        "delta_ci_high": nan if is_base else d.ci_high,
        "p_value": nan if is_base else d.p_value,
        "mde": nan if is_base else d.mde,
        "tune_seconds": tuning["tune_seconds"],
        "pruned_frac": tuning.get("pruned", 0) / tuning["trials"] if tuning["trials"] else nan,
        "step_time_ms": part["step_time_ms"].mean(),
        "peak_mem_mb": part["peak_mem_mb"].max(),
        "teacher_miou": _or_nan(tuning.get("teacher_miou")),
        # an improvement within one seed sd of the finals is noise, not under-tuning
        "undertuned": undertuned(tuning["best_so_far"], min_gain=0.0 if math.isnan(std) else std),
        "extra_dims": " ".join(space.get("method") or {}),
        "ci_method": "" if is_base else ("none (constant Δ)" if d.constant else ci),
        "holdout_miou": _or_nan(tuning["holdout_miou"]),
        "default_holdout_miou": _or_nan(tuning.get("literature_default_miou")),
        "budget": part["budget"].iloc[0],
        "study": tuning["study"],
        "settings_hash": part["settings_hash"].iloc[0],
        "teacher_sha256": part["teacher_sha256"].iloc[0],
        "crossover_trials": "",
        "crossover_ci": "",
        "repeats": 1,
        "code": "",
    }
    return MethodResult(
        row,
        scores=scores,
        holdout_values=tuning.get("holdout_values") or [],
        tuning=list(part["tuning"]),
        teachers=set(part["teacher_sha256"]),
        finals=[{k: r.get(k) for k in (*FINAL_FACTS, "seed", "path")} for r in part.to_dict("records")],
    )


def add_crossover(results: list[MethodResult]) -> None:
    """``crossover_trials`` of each KD row: the smallest k at which the baseline's median best
    hold-out mIoU of k trials reaches the method's at the full budget, or "not within N" (N: the
    baseline's trials), and ``crossover_ci`` its 95% interval (:mod:`bench.report.tuning_curves`).
    Empty without per-trial scores (older finals)."""
    base = next((m for m in results if m.method == "baseline"), None)
    for m in results:
        if m is not base and base is not None:
            m.row.update(_crossover_columns([base.holdout_values], [m.holdout_values]))


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def equal_terms(results: list[MethodResult], allow_mixed_code: bool = False) -> list[list[str]]:
    """Per row, why its comparison with the baseline is not on equal terms (empty: equal).

    Checked: the study's own budget (met; trials exactly; time within one trial per worker), the
    literature default among the counted trials, the teacher the finals used; against the
    baseline: every setting of :data:`SHARED_SETTINGS`, the shared search space by content, the
    method's own dimensions (``method.*`` only), the realised budget (trials exactly; device-seconds
    within one trial per worker of each study), for time budgets the compute the trials ran on
    (:mod:`bench.report.compute_check`), the pruned fractions (:mod:`bench.report.pruning`), the
    final seeds; across the KD methods: one teacher
    checkpoint. The finals themselves (:mod:`bench.report.finals_terms`): each final's composed
    config and threads against the baseline's finals and among the method's own, and one clean code
    version for the comparison (or ``allow_mixed_code``, recorded in the ``code`` column).
    """
    base = next((m for m in results if m.method == "baseline"), None)
    teachers = {m.method: m.row["teacher_sha256"] for m in results if m.method != "baseline"}
    everyone = [f for m in results for f in m.finals]
    out = []
    for m in results:
        problems = _own_problems(m) + selection_problems(m.finals)
        uneven = finals_terms.among_themselves(m.finals, m.tuned_keys)
        if uneven:
            problems.append(f"the finals differ among themselves: {uneven}")
        m.row["code"] = finals_terms.code_label(m.finals)
        code = finals_terms.code_problem(m.finals, everyone)
        if code and allow_mixed_code:
            m.row["code"] = f"mixed, allowed: {m.row['code']}"
        elif code:
            problems.append(code)
        problems.extend(_identity_problems(m, base, allow_mixed_code))
        if base is None:
            problems.append("no tuned baseline")
        elif m is not base:
            problems.extend(_against_baseline(m, base))
            differ = finals_terms.differences(m.finals, base.finals, {*m.tuned_keys, *base.tuned_keys})
            if differ:
                problems.append(f"finals differ: {differ}")
        if m.method != "baseline" and len(set(teachers.values())) > 1:
            listed = ", ".join(f"{k} {(s or 'none')[:12]}" for k, s in sorted(teachers.items()))
            problems.append(f"teacher checkpoints differ across the KD methods ({listed})")
        out.append(problems)
    return out


def _identity_problems(m: MethodResult, base: MethodResult | None, allow_mixed_code: bool) -> list[str]:
    """Data read and code run (:mod:`bench.report.identity_terms`): against the baseline and within."""
    problems = []
    uneven = identity_terms.data_among_themselves(m.finals)
    if uneven:
        problems.append(f"data differs among the finals: {uneven}")
    retrained = identity_terms.against_study(m.finals, m.tuning[0]["settings"])
    if retrained:
        problems.append(f"data differs from the study's: {retrained}")
    if base is not None and m is not base:
        differ = identity_terms.data_differences(
            m.finals, base.finals, m.tuning[0]["settings"], base.tuning[0]["settings"]
        )
        if differ:
            problems.append(f"data differs: {differ}")
    mixed = identity_terms.study_code(m.tuning[0])
    if mixed and allow_mixed_code:
        finals = m.row["code"].removeprefix("mixed, allowed: ")
        m.row["code"] = f"mixed, allowed: study {'; '.join(m.tuning[0]['code_versions'])}; finals {finals}"
    elif mixed:
        problems.append(mixed)
    return problems


def _own_problems(m: MethodResult) -> list[str]:
    r, t = m.row, m.tuning[0]
    settings, problems = t["settings"], []
    if len({x.get("best_trial") for x in m.tuning}) > 1:
        problems.append("the finals retrained different best trials (the study changed between them)")
    if not t.get("budget_met", True):
        problems.append("budget not met")
    budget = _budget(t)
    if budget["kind"] == "trials" and budget.get("trials") is not None and t["trials"] != budget["trials"]:
        problems.append(f"{t['trials']} counted trials for a budget of {budget['trials']}")
    if budget["kind"] == "time" and budget.get("seconds") is not None:
        over, tol = t["tune_seconds"] - budget["seconds"], t.get("seconds_tolerance", 0.0)
        if over > tol:
            problems.append(
                f"{t['tune_seconds']:.0f} s of training overshoot the budget of {budget['seconds']:.0f} s "
                f"by more than one trial per worker ({tol:.0f} s)"
            )
    if not t.get("literature_default_counted", False):
        problems.append("the literature default (trial 0) is not among the counted trials")
    if "space" not in settings:
        problems.append("search space not recorded (finals of an older version: rerun make final)")
    if r["method"] != "baseline":
        if len(m.teachers) > 1:
            problems.append("the finals used different teacher checkpoints")
        tuned = settings.get("teacher_sha256")
        if tuned and r["teacher_sha256"] and tuned != r["teacher_sha256"]:
            problems.append(
                f"the finals used teacher {r['teacher_sha256'][:12]}, the study was tuned with {tuned[:12]}"
            )
        saw = report_problem(settings)  # the tuning teacher fitted the hold-out the trials are scored on
        if saw:
            problems.append(saw)
        outside = [k for k in (settings.get("space") or {}).get("method", {}) if not k.startswith("method.")]
        if outside:
            problems.append(
                f"own dimensions outside method.* ({', '.join(outside)}): the baseline cannot tune them"
            )
    return problems


def _against_baseline(m: MethodResult, base_result: MethodResult) -> list[str]:
    r, base = m.row, base_result.row
    t, b = m.tuning[0], base_result.tuning[0]
    problems = [
        f"{key} differs from the baseline's"
        for key in SHARED_SETTINGS
        if t["settings"].get(key) != b["settings"].get(key)
    ]
    shared, base_shared = _shared_space(t), _shared_space(b)
    if shared is not None and base_shared is not None and shared != base_shared:
        diff = sorted(k for k in set(shared) | set(base_shared) if shared.get(k) != base_shared.get(k))
        problems.append(f"shared search space differs from the baseline's ({', '.join(diff)})")
    if r["budget_kind"] == "trials" and r["trials"] != base["trials"]:
        problems.append(f"{r['trials']} trials vs the baseline's {base['trials']}")
    if r["budget_kind"] == "time" == base["budget_kind"]:
        gap = abs(t["tune_seconds"] - b["tune_seconds"])
        tol = max(t.get("seconds_tolerance", 0.0), b.get("seconds_tolerance", 0.0))
        if gap > tol:
            problems.append(
                f"{t['tune_seconds']:.0f} s of training vs the baseline's {b['tune_seconds']:.0f} s "
                f"(more than one trial per worker apart: {tol:.0f} s)"
            )
    if r["budget_kind"] == "time" == base["budget_kind"]:  # equal device-seconds need equal compute
        problems.extend(compute_problems(t.get("compute"), b.get("compute")))
    pruned = pruned_problem(t, b)
    if pruned:
        problems.append(pruned)
    if sorted(m.scores) != sorted(base_result.scores):
        problems.append("seeds differ from the baseline's")
    return problems


def _shared_space(tuning: dict[str, Any]) -> dict[str, Any] | None:
    space = tuning["settings"].get("space")
    return None if space is None else space.get("shared", {})


def flags(table: pd.DataFrame) -> list[str]:
    """Every flag of the table, one line each: unequal terms, under-tuning, constant Δ."""
    out = []
    for r in table.itertuples():
        where = f"{r.dataset}/{r.student}/{r.teacher}/{r.method}"
        if r.budget_check != "ok":
            out.append(f"{where}: {r.budget_check}")
        if r.undertuned:
            tail = undertuned_tail(int(r.trials)) if r.trials else 1
            out.append(
                f"{where}: undertuned (best hold-out mIoU still improved by more than a seed sd "
                f"in the last {tail} of {r.trials} trials)"
            )
        if str(getattr(r, "code", "")).startswith("mixed, allowed"):
            out.append(f"{where}: code versions mixed, allowed by --allow-mixed-code ({r.code})")
        elif "+changes" in str(getattr(r, "code", "")):
            out.append(f"{where}: finals ran from uncommitted changes ({r.code}); commit them to reproduce")
        if r.ci_method == "none (constant Δ)":
            out.append(f"{where}: constant Δ over the seeds: no CI, p from the exact sign-flip test")
    return out


def write_tables(table: pd.DataFrame, out_dir: Path, name: str = "comparison") -> dict[str, Path]:
    """<name>.csv (full precision), <name>.md and <name>.tex (2 decimals)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex")}
    write_text_atomic(paths["csv"], table.to_csv(index=False))
    columns = [*COLUMNS]
    if families.ACROSS_COLUMN in table.columns:  # --correct-across: beside p_holm
        columns.insert(columns.index("p_holm") + 1, families.ACROSS_COLUMN)
    shown = table[[*columns, "budget_check", "extra_dims"]]
    md = f"{families.family_text(table)}.\n\n" + shown.to_markdown(index=False, floatfmt=".2f")
    read_against = published.lines(table)
    if read_against:
        md += "\n\nPublished results beside ours:\n\n" + "\n".join(f"- {line}" for line in read_against)
    lines = flags(table)
    if lines:
        head = "**WARNING: flagged comparisons (see budget_check and undertuned):**\n\n"
        md = head + "\n".join(f"- {line}" for line in lines) + "\n\n" + md
    write_text_atomic(paths["md"], md + "\n")
    latex = shown.style.format(precision=2, na_rep="--").hide(axis="index").to_latex(hrules=True)
    write_text_atomic(paths["tex"], latex.replace("_", r"\_"))
    return paths


def _studies(runs: pd.DataFrame) -> list[tuple[tuple, str, int, dict[str, Any]]]:
    """Each study's tuning record once per budget, as ``((dataset, student, teacher, budget), method,
    repeat, tuning)``; the baseline once in every teacher's group of its dataset × student × budget
    (it is every KD method's reference)."""
    if runs.empty:
        return []
    rows = runs.drop_duplicates(["study", "budget"]).sort_values(["repeat", "study"])
    teachers: dict[tuple, set[str]] = {}
    for r in rows.itertuples():
        if r.method != "baseline" and isinstance(r.teacher, str):
            teachers.setdefault((r.dataset, r.student, r.budget), set()).add(r.teacher)
    out = []
    for r in rows.itertuples():
        group = (r.dataset, r.student, r.budget)
        keys = (sorted(teachers.get(group, ())) or [None]) if r.method == "baseline" else [r.teacher]
        out.extend(((r.dataset, r.student, t, r.budget), r.method, r.repeat, r.tuning) for t in keys)
    return out


def tuning_curves(runs: pd.DataFrame) -> dict[tuple, dict[str, list[float | None]]]:
    """Best-so-far hold-out mIoU (%) per counted trial (slot order), per (dataset, student, teacher,
    budget) and method (first repeat); the baseline in every teacher's group."""
    first = runs["repeat"].min() if not runs.empty else 0
    curves: dict[tuple, dict[str, list[float | None]]] = {}
    for key, method, repeat, tuning in _studies(runs):
        if repeat == first:
            curves.setdefault(key, {})[method] = list(tuning["best_so_far"])
    return curves


def budget_curves(runs: pd.DataFrame) -> dict[tuple, dict[str, list[list[float | None]]]]:
    """Every counted trial's hold-out mIoU (%) in slot order, per (dataset, student, teacher,
    budget), method and repeat (one list per study); the baseline in every teacher's group.

    Finals without per-trial scores (older versions) are left out.
    """
    out: dict[tuple, dict[str, list[list[float | None]]]] = {}
    for key, method, _, tuning in _studies(runs):
        if tuning.get("holdout_values"):
            out.setdefault(key, {}).setdefault(method, []).append(list(tuning["holdout_values"]))
    return out
