"""Studies: storage, names, the settings every method must share, and the realised budget.

Budget accounting (the README's "Tuning protocol" cites this):

- A trial *counts* toward the budget when it finished as COMPLETE or PRUNED, or FAILED because its
  sampled configuration diverged (NaN/inf loss): those are outcomes of the search.
- Failures that say nothing about the configuration — out of memory, a crash, Ctrl-C, a worker that
  died (stale), a trial discarded for exceeding the budget — do not count; the sweep replaces them,
  up to ``tune.max_failed_trials``.
- ``budget=trials``: exactly ``tune.trials`` counted trials. Workers claim a trial, then check its
  rank among counted-or-running trials (trial numbers are assigned atomically by the storage); a
  trial ranked beyond the budget is discarded before it trains, so concurrent workers — on one
  machine or many — never overshoot.
- ``budget=time``: new trials start while the counted trials' training seconds plus the running
  trials' elapsed time stay below ``tune.seconds``; the overshoot is at most one trial per worker
  and the realised seconds are recorded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from bench.config.compose import to_dict
from bench.config.schema import NON_SEMANTIC_KEYS, RunConfig, TuneConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.tune.space import SearchSpace
from bench.utils.secrets import mask_in, mask_url

JOURNAL = "optuna.journal"
COUNTED_FAILURES = frozenset({"nonfinite"})


def storage_url(tune: TuneConfig) -> str:
    """The storage a sweep uses: ``tune.storage`` or the journal file under ``tune.studies_dir``."""
    return tune.storage or str(Path(tune.studies_dir) / JOURNAL)


def storage_url_for_log(tune: TuneConfig) -> str:
    return mask_url(storage_url(tune)) or ""


def open_storage(tune: TuneConfig) -> optuna.storages.BaseStorage:
    """Open (creating if needed) the study storage; unreachable URLs are a clear, masked error."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if tune.storage is None or "://" not in tune.storage:
        path = Path(storage_url(tune))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    url = tune.storage
    check_driver(url)
    try:
        if url.startswith(("redis://", "rediss://")):
            backend = optuna.storages.journal.JournalRedisBackend(url)
            return optuna.storages.JournalStorage(backend)
        # No heartbeat_interval here: with ask/tell Optuna would only warn on every ask. The sweep
        # records heartbeats itself (bench.tune.heartbeat).
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as e:  # any driver error means "cannot use this storage"
        reason = mask_in(str(e).splitlines()[0] if str(e) else type(e).__name__, url)
        raise ConfigError(
            f"cannot open study storage {mask_url(url)}: {reason}. Check the URL, that the server is "
            "reachable and the credentials; or leave STORAGE unset for the local journal file"
        ) from None


# URL scheme → (module the pinned SQLAlchemy / Optuna import for it, pyproject extra that installs it)
DRIVERS = {
    "postgresql": ("psycopg", "postgres"),  # SQLAlchemy 2.x: a bare postgresql:// means psycopg 3
    "postgresql+psycopg": ("psycopg", "postgres"),
    "postgresql+psycopg2": ("psycopg2", "postgres-psycopg2"),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
}


def check_driver(url: str) -> None:
    """A storage URL whose driver is not installed is an error naming the extra that installs it."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in DRIVERS:
        return
    module, extra = DRIVERS[scheme]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"storage {mask_url(url)} needs the Python module '{module}', which is not installed; "
            f"install it with: pip install -e '.[{extra}]'"
        )


def needs_teacher(cfg: RunConfig) -> bool:
    return any(TERMS.get(t.term or k).needs_teacher for k, t in cfg.method.terms.items())


def study_name(cfg: RunConfig) -> str:
    """``<dataset>/<student>/<teacher or none>/<method>/<budget>``, e.g. ``synthetic/…/kd/trials20``."""
    teacher = cfg.teacher.name if needs_teacher(cfg) else "none"
    return "/".join((cfg.dataset.name, cfg.student.name, teacher, cfg.method.name, budget_tag(cfg.tune)))


def budget_tag(tune: TuneConfig) -> str:
    if tune.budget == "trials":
        return f"trials{tune.trials}"
    return f"time{tune.seconds:g}s"


def trial_iterations(cfg: RunConfig) -> int:
    return cfg.tune.trial_iterations or cfg.train.iterations


def study_settings(cfg: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """What must be identical for a fair comparison; stored with the study and checked on resume."""
    t = cfg.tune
    return {
        "dataset": cfg.dataset.name,
        "student": cfg.student.name,
        "teacher": cfg.teacher.name if needs_teacher(cfg) else None,
        "method": cfg.method.name,
        "budget": {
            "kind": t.budget,
            "trials": t.trials if t.budget == "trials" else None,
            "seconds": t.seconds if t.budget == "time" else None,
        },
        "sampler": t.sampler,
        "sampler_seed": t.sampler_seed,
        "pruner": t.pruner,
        "pruner_startup_trials": t.pruner_startup_trials,
        "pruner_warmup_steps": t.pruner_warmup_steps,
        "trial_iterations": trial_iterations(cfg),
        "val_interval": val_interval(cfg),
        "protocol_hash": protocol_hash(cfg, space),
        "space": space.as_dict(),
    }


def val_interval(cfg: RunConfig) -> int:
    """Steps between the intermediate validations that feed the pruner (0 without a pruner)."""
    if cfg.tune.pruner == "none":
        return 0
    return cfg.tune.val_interval or max(trial_iterations(cfg) // 4, 1)


def protocol_hash(cfg: RunConfig, space: SearchSpace) -> str:
    """Hash of everything a trial runs under except the method and the tuned values.

    Equal across the methods of one comparison iff they share dataset, student, training protocol
    (untuned keys), evaluation protocol and seed.
    """
    data = to_dict(cfg)
    for key in ("method", "teacher", *NON_SEMANTIC_KEYS, *space.distributions):
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    blob = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def open_study(
    cfg: RunConfig, space: SearchSpace, storage: optuna.storages.BaseStorage, overrides: list[str]
) -> optuna.Study:
    """Create the study (trial 0 = the literature default) or load it, checking its settings.

    ``overrides`` (the sweep's command line) are stored so that the finals recompose the same
    protocol; credentials in them are masked.
    """
    name = study_name(cfg)
    settings = study_settings(cfg, space)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("settings")
    if stored is None:
        kept = [o for o in overrides if not o.lstrip("+~").startswith("tune.")]
        study.set_user_attr("overrides", [mask_url(o) for o in kept])
        study.set_user_attr("settings", settings)
        study.enqueue_trial(space.defaults, user_attrs={"literature_default": True}, skip_if_exists=True)
    elif stored != settings:
        changed = sorted(k for k in settings if stored.get(k) != settings[k])
        raise ConfigError(
            f"study '{name}' already exists with other settings ({', '.join(changed)}); a study must keep "
            "its settings to stay comparable — restore them, or use another storage (STORAGE=...)"
        )
    return study


@dataclass
class Tally:
    """Where a study stands against its budget."""

    counted: list[FrozenTrial]  # finished trials that count, in trial-number order
    running: list[FrozenTrial]
    uncounted_failures: int

    @property
    def seconds(self) -> float:
        return sum(t.user_attrs.get("train_seconds", 0.0) for t in self.counted)


def fail_reason(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get("fail_reason")


def is_counted(trial: FrozenTrial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and fail_reason(trial) in COUNTED_FAILURES


def tally(study: optuna.Study) -> Tally:
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if is_counted(t)]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    failures = sum(
        1
        for t in trials
        if t.state == TrialState.FAIL and not is_counted(t) and fail_reason(t) != "over_budget"
    )
    return Tally(counted, running, failures)


def record_realised_budget(study: optuna.Study) -> dict[str, Any]:
    """Store what the study has spent (counted trials, training seconds, uncounted failures)."""
    t = tally(study)
    realised = {"trials": len(t.counted), "seconds": t.seconds, "uncounted_failures": t.uncounted_failures}
    study.set_user_attr("realised_budget", realised)
    return realised


def budget_left(study: optuna.Study, tune: TuneConfig, now: float) -> bool:
    """Whether another trial may start (counted + running stay within the budget)."""
    t = tally(study)
    if tune.budget == "trials":
        return len(t.counted) + len(t.running) < tune.trials
    running = sum(now - r.datetime_start.timestamp() for r in t.running if r.datetime_start)
    return t.seconds + running < tune.seconds


def over_budget(study: optuna.Study, tune: TuneConfig, number: int) -> bool:
    """Whether the just-claimed trial ``number`` lies beyond a trial budget (exact across workers)."""
    if tune.budget != "trials":
        return False
    ahead = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number < number and (t.state == TrialState.RUNNING or is_counted(t))
    ]
    return len(ahead) >= tune.trials


def budget_met(study: optuna.Study, tune: TuneConfig) -> bool:
    t = tally(study)
    if tune.budget == "trials":
        return len(t.counted) >= tune.trials
    return t.seconds >= tune.seconds


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The COMPLETE trial with the highest hold-out score."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"study '{study.study_name}' has no completed trial yet; run its sweep first")
    return max(complete, key=lambda t: (t.value, -t.number))


def best_so_far(study: optuna.Study) -> list[float | None]:
    """Best hold-out score after each counted trial, in trial order (None until the first complete)."""
    best, curve = None, []
    for t in tally(study).counted:
        if t.state == TrialState.COMPLETE and (best is None or t.value > best):
            best = t.value
        curve.append(best)
    return curve
