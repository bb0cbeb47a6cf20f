"""A study's identity: its name, the settings every method of a comparison must share, and their hash.

The budget's amount is not part of it: a study serves every budget as a prefix of its slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config.compose import hash_without, load_config, to_dict
from bench.config.schema import NON_SEMANTIC_KEYS, RunConfig
from bench.data.fingerprint import split_fingerprint
from bench.methods import needs_teacher
from bench.preflight import check_teacher
from bench.teacher_split import tuning_teacher
from bench.tune.space import SearchSpace
from bench.utils.io import sha256_file
from bench.utils.runtime import derive_seed


@dataclass(frozen=True)
class StudyName:
    """``<dataset>/<student>/<teacher or none>/<method>/<budget kind>[/r<repeat>]``, made and read here."""

    dataset: str
    student: str
    teacher: str  # "none" for a method without a teacher
    method: str
    kind: str  # the budget's kind: trials or time
    repeat: int = 0

    def __str__(self) -> str:
        name = "/".join((self.dataset, self.student, self.teacher, self.method, self.kind))
        return name + (f"/r{self.repeat}" if self.repeat else "")  # repeat 0: no suffix

    @classmethod
    def parse(cls, name: str) -> StudyName | None:
        """The parts of a segkd-bench study's name; None for any other name (another tool's study,
        or one named before budgets became prefixes, ``…/trials20``)."""
        parts = name.split("/")
        repeat = parts[5].removeprefix("r") if len(parts) == 6 else "0"
        if len(parts) not in (5, 6) or not repeat.isdigit() or parts[4] not in ("trials", "time"):
            return None
        return cls(*parts[:5], repeat=int(repeat))


def study_name(cfg: RunConfig) -> str:
    """``<dataset>/<student>/<teacher or none>/<method>/<budget kind>``, e.g. ``synthetic/…/kd/trials``.

    The budget's amount is not part of a study's identity: a study serves every budget as a prefix
    of its slots (:func:`prefix`), and a larger budget tops the same study up. Trial and time
    budgets are different studies (``…/trials`` and ``…/time``).
    """
    teacher = cfg.teacher.name if needs_teacher(cfg) else "none"
    parts = (cfg.dataset.name, cfg.student.name, teacher, cfg.method.name, str(cfg.tune.budget))
    return str(StudyName(*parts, repeat=cfg.tune.repeat))


def repeat_overrides(overrides: list[str], repeat: int) -> list[str]:
    """The overrides of repeat ``repeat`` of a study: its index and its own sampler and hold-out seeds.

    Repeat 0 keeps the configured ``tune.sampler_seed`` and ``dataset.holdout_seed``; repeat r > 0
    derives both from (configured seed, r). Every method's repeat r gets the same seeds, so the
    methods of one repeat share their hold-out split and slot seeds (common random numbers) while
    repeats are independent tuning runs under an identical protocol.
    """
    cfg = load_config(overrides)
    seeds = (cfg.tune.sampler_seed, cfg.dataset.holdout_seed)
    if repeat:
        seeds = tuple(derive_seed(s, 0x5EED, repeat) for s in seeds)
    return [
        *overrides,
        f"tune.repeat={repeat}",
        f"tune.sampler_seed={seeds[0]}",
        f"dataset.holdout_seed={seeds[1]}",
    ]


def trial_iterations(cfg: RunConfig) -> int:
    return cfg.tune.trial_iterations or cfg.train.iterations


def study_settings(cfg: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """What must be identical for a fair comparison; stored with the study and checked on resume.

    Everything is content, nothing a path: the same command from another clone or machine gives
    the same settings (the space by its distributions, the teacher by its checkpoint's SHA-256: the
    full-data teacher the finals use, and the tuning-train part's teacher the trials use; the data by
    the fingerprints of the splits the trials read: :func:`tuning_data`).
    """
    t = cfg.tune
    return {
        "dataset": cfg.dataset.name,
        "student": cfg.student.name,
        "teacher": cfg.teacher.name if needs_teacher(cfg) else None,
        "method": cfg.method.name,
        "repeat": t.repeat,
        "budget": {"kind": t.budget},  # the amount is per comparison, not per study
        "sampler": t.sampler,
        "sampler_seed": t.sampler_seed,
        "pruner": t.pruner,
        "pruner_startup_trials": t.pruner_startup_trials,
        "pruner_warmup_steps": t.pruner_warmup_steps,
        "trial_iterations": trial_iterations(cfg),
        "val_interval": val_interval(cfg),
        "protocol_hash": protocol_hash(cfg, space),
        "space": space.content(),
        "teacher_sha256": teacher_sha256(cfg) if needs_teacher(cfg) else None,
        # the teacher the trials load: trained on the tuning-train part (bench.teacher_split)
        "tuning_teacher": tuning_teacher(cfg) if needs_teacher(cfg) else None,
        "data": {split: fp["sha256"] for split, fp in tuning_data(cfg).items()},
    }


# The splits a study's trials read, and the training split they are carved from (its finals' data).
TUNING_SPLITS = ("train", "tune_train", "tune_holdout")


def tuning_data(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """The fingerprints of the splits of a study (:data:`TUNING_SPLITS`, :mod:`bench.data.fingerprint`)."""
    return {split: split_fingerprint(cfg.dataset, split) for split in TUNING_SPLITS}


def settings_hash(settings: dict[str, Any]) -> str:
    """A study's identity beyond its name: the hash of its settings (the budget's kind, not its amount).

    One study serves several budgets as prefixes of its slots; studies of equal hash were tuned
    under identical terms.
    """
    kept = {**settings, "budget_kind": (settings.get("budget") or {}).get("kind")}
    return hash_without(kept, ["budget"], default=str)


def teacher_sha256(cfg: RunConfig) -> str:
    """SHA-256 of the teacher checkpoint the study's trials load (a clear error when it is missing)."""
    from bench.teachers import teacher_path

    check_teacher(cfg)
    path = teacher_path(cfg)
    return sha256_file(path)


def val_interval(cfg: RunConfig) -> int:
    """Steps between the intermediate validations that feed the pruner (0 without a pruner).

    By default a quarter of a trial, rounded up: three validations and the final evaluation (rounded
    down, 150 iterations would validate at 37, 74, 111 and again at 148, two steps before the end).
    """
    if cfg.tune.pruner == "none":
        return 0
    return cfg.tune.val_interval or max(-(-trial_iterations(cfg) // 4), 1)


def protocol_hash(cfg: RunConfig, space: SearchSpace) -> str:
    """Hash of everything a trial runs under except the method and the tuned values.

    Equal across the methods of one comparison iff they share dataset, student, training protocol
    (untuned keys), evaluation protocol and seed. Paths are left out (``dataset.root``) or replaced
    by content (a local encoder weights file by its SHA-256), so the hash is the same on every clone.
    """
    data = to_dict(cfg)
    weights = data["student"].get("encoder_weights")
    if weights not in (None, "imagenet") and Path(weights).is_file():  # by content, not by location
        data["student"]["encoder_weights"] = sha256_file(weights)
    keys = ("method", "teacher", "dataset.root", *NON_SEMANTIC_KEYS, *space.distributions)
    return hash_without(data, keys, default=str)
