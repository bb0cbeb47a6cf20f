"""Rows that cannot be edited unnoticed: each final's ``result.json`` against the storage.

A final's row carries its score and, under ``tuning``, facts copied from its study (trials, budget
met, literature default counted, best-so-far curve …). Both could be edited after the fact: adding
0.05 to ``metrics.miou`` in three kd rows turned Δ −1.25 into +3.75. So:

- ``make final`` records the SHA-256 of each ``result.json`` it writes in the study storage (study
  user attribute ``final_sha256:<budget>/seed<k>``), beside the study the row came from;
- ``make report`` checks every row that names its storage: the file's SHA-256 against the recorded
  one, and the ``tuning`` facts against those recomputed from the study at the row's budget
  (:func:`bench.tune.finals.study_summary`). A row that no longer matches is refused, naming the file.

Rows without a recorded storage (hand-made rows, finals of older versions) are not checked here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from bench.config.schema import TuneConfig
from bench.errors import BenchError
from bench.tune.finals_digest import recorded_digests
from bench.utils.io import sha256_file

# The tuning facts a row must share with its study (those that cannot change once counted).
FACTS = (
    "settings_hash",
    "trials",
    "pruned",
    "tune_seconds",
    "compute",
    "budget_met",
    "literature_default_counted",
    "literature_default_miou",
    "best_trial",
    "best_params",
    "holdout_miou",
    "best_so_far",
    "holdout_values",
    "code_versions",
)


class RowMismatchError(BenchError):
    """A final's row no longer matches what was recorded when it was written."""


def _tune_at(budget: dict[str, Any]) -> TuneConfig:
    from bench.config.budget import Budget

    b = Budget.from_dict(budget)
    return b.on(replace(TuneConfig(), budget=budget["kind"]))


def _open(url: str, given: str | None, cache: dict[str, Any]) -> optuna.storages.BaseStorage:
    from bench.tune import study as st

    target = given or url
    if target in cache:
        return cache[target]
    if "***" in target:
        raise RowMismatchError(
            f"the final runs name the storage {target} (password masked): pass it to check their rows, "
            "make report STORAGE=<url> (python -m bench.report --storage URL)"
        )
    if "://" not in target and not Path(target).is_file():
        raise RowMismatchError(
            f"the final runs were recorded in the study storage {target}, which is not here: run the "
            "report where the studies are, or pass it: make report STORAGE=<path or url>"
        )
    tune = replace(TuneConfig(), storage=target)
    cache[target] = st.open_storage(tune, repair=False)
    return cache[target]


def verify_runs(runs: pd.DataFrame, storage: str | None = None) -> int:
    """Check every final that names its storage (see the module docstring); returns how many were.

    ``storage``: the URL or path to read instead of the one each row recorded (masked passwords,
    studies moved). Raises :class:`RowMismatchError` naming the first file that does not match.
    """
    from bench.tune.finals import study_summary

    cache: dict[str, Any] = {}
    studies: dict[tuple[str, str], optuna.Study] = {}
    summaries: dict[tuple[str, str, str], dict[str, Any]] = {}
    checked = 0
    for r in runs.itertuples():
        tuning = r.tuning
        url = tuning.get("storage")
        if not url:
            continue
        target = storage or url
        key = (target, tuning["study"])
        if key not in studies:
            try:
                opened = _open(url, storage, cache)
                studies[key] = optuna.load_study(study_name=tuning["study"], storage=opened)
            except KeyError:
                raise RowMismatchError(
                    f"{r.path}: its study '{tuning['study']}' is not in the storage {target}; the row "
                    "cannot be checked (pass the storage it came from: make report STORAGE=...)"
                ) from None
        study = studies[key]
        budget = r.budget  # the label final_runs gave it, e.g. trials20
        recorded = recorded_digests(study, budget, int(r.seed))
        if not recorded:
            raise RowMismatchError(
                f"{r.path}: no digest of this row was recorded in study '{study.study_name}' when it was "
                "written (a final of an older version, or a row copied in): rerun its final "
                "(delete the folder, make final) to have it checked"
            )
        actual = sha256_file(r.path)
        if actual not in recorded:
            raise RowMismatchError(
                f"{r.path} was changed after its final wrote it (SHA-256 {actual[:12]}, not among those "
                f"recorded in study '{study.study_name}'); restore it or rerun that final"
            )
        if (*key, budget) not in summaries:
            summaries[(*key, budget)] = study_summary(study, _tune_at(tuning.get("budget") or {}))
        fresh = summaries[(*key, budget)]
        wrong = [f for f in FACTS if f in tuning and _jsonish(tuning[f]) != _jsonish(fresh.get(f))]
        if wrong:
            raise RowMismatchError(
                f"{r.path}: its tuning facts ({', '.join(wrong)}) differ from study '{study.study_name}' "
                "at its budget; the row is not what its study gives: rerun its final"
            )
        checked += 1
    return checked


def _jsonish(value: Any) -> Any:
    """Compare as written to JSON (tuples become lists, dict keys strings)."""
    import json

    return json.loads(json.dumps(value, default=str))
