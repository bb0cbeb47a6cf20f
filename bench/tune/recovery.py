"""A study recovers from a user's mistake: failures that do not count against the limit, and the two
commands that put a study right (``make forget-failures STUDY=…``, ``make forget-study STUDY=…``).

``tune.max_failed_trials`` guards against a sweep that crashes trial after trial. Trials that failed
for a user's mistake (``user_error``: data, weights, a checkpoint, a full disk; the study stopped at
the first) never count against it, and ``forget-failures`` sets aside every uncounted failure so far
(kept in the storage, as Optuna cannot delete a trial; their replacements stay queued), so after a
fix the rerun goes on. Counted trials are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna

from bench.errors import ConfigError
from bench.tune import study as st

FORGOTTEN = "forgotten_failures"  # study user attribute: trial numbers set aside by forget-failures


def failures_against_limit(study: optuna.Study) -> int:
    """Uncounted failures that count against ``tune.max_failed_trials``: not a user's mistake, not
    set aside by :func:`forget_failures`."""
    forgotten = set(study.user_attrs.get(FORGOTTEN, []))
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if st.is_uncounted_failure(t) and st.fail_reason(t) != st.USER_ERROR and t.number not in forgotten
    )


def forget_failures(study: optuna.Study) -> list[int]:
    """Set aside every uncounted failure of ``study`` so far; returns the trial numbers newly set aside.

    Counted trials, running trials and the queued replacements are left as they are; a failure
    without a replacement gets one (same slot), so the rerun fills every slot.
    """
    forgotten = set(study.user_attrs.get(FORGOTTEN, []))
    failed = {t.number for t in study.get_trials(deepcopy=False) if st.is_uncounted_failure(t)}
    new = sorted(failed - forgotten)
    study.set_user_attr(FORGOTTEN, sorted(forgotten | failed))
    st.enqueue_missing_replacements(study)
    return new


def load(storage: optuna.storages.BaseStorage, name: str, where: str) -> optuna.Study:
    """The stored study ``name``, or an error listing the stored ones."""
    names = optuna.get_all_study_names(storage)
    if name not in names:
        listed = "\n  ".join(sorted(names)) or "(none)"
        raise ConfigError(f"no study '{name}' in {where}; stored studies (make status):\n  {listed}")
    return optuna.load_study(study_name=name, storage=storage)


def forget_study(storage: optuna.storages.BaseStorage, name: str, trials_dir: str | Path) -> Path | None:
    """Delete study ``name`` from the storage and its trial folders; returns the folder removed."""
    optuna.delete_study(study_name=name, storage=storage)
    folder = Path(trials_dir) / name
    if folder.is_dir():
        shutil.rmtree(folder)
        return folder
    return None
