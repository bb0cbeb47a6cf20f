"""Which training images a teacher fitted, and whether it fitted a tuning hold-out.

KD trials are scored on the tuning hold-out (:mod:`bench.data.splits`); a teacher trained on the
whole training split has fitted those images' labels, so its hints lean the trials' scores toward
KD. Tuning therefore uses a teacher trained on the tuning-train part only
(:func:`bench.teachers.teacher_path` with ``tune_train``), and every teacher checkpoint records what
it was trained on (:func:`trained_on`), inside the checkpoint: renaming a file does not change it.

A record is the split's definition (split, dataset, number of training images, hold-out size and
seed) plus the SHA-256 of the training indices it gives, so a record is checked against its own
definition, and :func:`holdout_problem` recomputes which of a study's hold-out images the teacher
trained on. A teacher without a record (trained before records existed, or converted from another
codebase) counts as having seen the hold-out: nothing shows that it did not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from bench.config.schema import DatasetConfig, RunConfig
from bench.data import build_split, holdout_indices
from bench.errors import CheckpointError
from bench.teachers import read_teacher_meta, teacher_path, train_command
from bench.utils.io import sha256_file

log = logging.getLogger("bench")

# What the report writes in budget_check for a KD row whose tuning teacher saw the hold-out.
FLAG = "teacher saw hold-out"


def _value(split: object) -> str:
    return str(getattr(split, "value", split))


def trained_on(cfg: RunConfig) -> dict[str, Any]:
    """The record of the images a run of ``cfg`` trains on (stored in its teacher checkpoint)."""
    ds = cfg.dataset
    n = len(build_split(ds, "train"))
    return make_record(_value(cfg.train.split), ds.name, n, ds.holdout_size, ds.holdout_seed)


def make_record(
    split: str, dataset: str, train_images: int, holdout_size: float = 0.0, holdout_seed: int = 0
) -> dict[str, Any]:
    """A record of training on ``split`` of a copy of ``dataset`` with ``train_images`` training
    images (the hold-out's size and seed only for the splits carved by it)."""
    record: dict[str, Any] = {"split": split, "dataset": dataset, "train_images": train_images}
    if split in ("tune_train", "tune_holdout"):
        record.update(holdout_size=holdout_size, holdout_seed=holdout_seed)
    record["indices_sha256"] = _digest(train_indices(record))
    return record


def train_indices(record: dict[str, Any]) -> list[int]:
    """The indices (into the training split) that a record's split covers; val covers none."""
    n, split = int(record["train_images"]), record["split"]
    if split == "train":
        return list(range(n))
    if split == "val":
        return []
    kept, held = holdout_indices(n, record["holdout_size"], record["holdout_seed"])
    return kept if split == "tune_train" else held


def _digest(indices: list[int]) -> str:
    return hashlib.sha256(json.dumps(sorted(indices)).encode()).hexdigest()


def study_holdout(ds: DatasetConfig) -> dict[str, Any]:
    """The tuning hold-out of a study, by definition (what :func:`holdout_problem` compares with)."""
    return {
        "dataset": ds.name,
        "train_images": len(build_split(ds, "train")),
        "holdout_size": ds.holdout_size,
        "holdout_seed": ds.holdout_seed,
    }


def holdout_problem(record: dict[str, Any] | None, holdout: dict[str, Any]) -> str | None:
    """None when a teacher with ``record`` trained on none of ``holdout``'s images; else why it
    counts as having seen them (the text follows :data:`FLAG`)."""
    if not record:
        return (
            "its checkpoint records no training split (trained before records, or converted): assume it did"
        )
    if record.get("dataset") != holdout["dataset"]:
        return f"trained on dataset '{record.get('dataset')}', the study tunes on '{holdout['dataset']}'"
    if record.get("train_images") != holdout["train_images"]:
        return (
            f"trained on a copy with {record.get('train_images')} training images, the study's has "
            f"{holdout['train_images']}"
        )
    try:
        indices = train_indices(record)
    except (KeyError, TypeError, ValueError) as e:
        return f"its record of the training split is incomplete ({e})"
    if _digest(indices) != record.get("indices_sha256"):
        return "its record of the training split does not match its own definition"
    _, held = holdout_indices(holdout["train_images"], holdout["holdout_size"], holdout["holdout_seed"])
    seen = len(set(indices) & set(held))
    if seen:
        return f"trained on {seen} of the study's {len(held)} hold-out images (split {record['split']})"
    return None


def tuning_teacher(cfg: RunConfig) -> dict[str, Any]:
    """What a KD study records of the teacher its trials load: its SHA-256, its record, the study's
    hold-out and the verdict (``problem``; None: the teacher never saw the hold-out).

    The teacher at the tuning key (no ``teacher.checkpoint``) must be clean: one that saw the
    hold-out there (the full teacher copied under the tuning key, an older hold-out) is refused.
    An explicit ``teacher.checkpoint`` is the user's choice: recorded, warned about, and flagged
    ``teacher saw hold-out`` by the report.
    """
    path = teacher_path(cfg, "tune_train")
    if not path.is_file():  # the preflight names the command; this is the last line of defence
        raise CheckpointError(
            f"no tuning teacher at {path}; train it with {train_command(cfg, 'tune_train')}"
        )
    record = read_teacher_meta(path).get("trained_on")
    holdout = study_holdout(cfg.dataset)
    problem = holdout_problem(record, holdout)
    if problem and not cfg.teacher.checkpoint:
        raise CheckpointError(
            f"the tuning teacher {path} saw the tuning hold-out ({problem}); tuning trials are scored "
            f"on the hold-out, so their teacher must be trained without it: delete the file and run "
            f"{train_command(cfg, 'tune_train')}, or pass teacher.checkpoint={path} to tune with it "
            f"anyway (the report then flags the rows '{FLAG}')"
        )
    if problem:
        log.warning(
            "teacher.checkpoint=%s saw the tuning hold-out (%s): the report flags '%s'", path, problem, FLAG
        )
    return {"sha256": sha256_file(path), "trained_on": record, "holdout": holdout, "problem": problem}


def report_problem(settings: dict[str, Any]) -> str | None:
    """A KD study's ``budget_check`` entry for its tuning teacher (None: it never saw the hold-out),
    recomputed from the study's settings; a study without the record (tuned before tuning teachers
    existed) used the full-data teacher, which saw the hold-out."""
    record = settings.get("tuning_teacher")
    if not record:
        return f"{FLAG} (the study's trials used the full-data teacher: tuned before tuning teachers)"
    if not isinstance(record.get("holdout"), dict) or not record["holdout"].get("train_images"):
        return f"{FLAG} (the study records no hold-out to check its tuning teacher against)"
    try:
        problem = holdout_problem(record.get("trained_on"), record["holdout"])
    except (KeyError, TypeError, ValueError) as e:  # a damaged record proves nothing
        problem = f"the study's record of its hold-out is incomplete ({e})"
    return f"{FLAG} ({problem})" if problem else None


def check_tuning_teacher_exists(cfg: RunConfig) -> Path:
    """The tuning teacher's checkpoint exists (preflight of a KD sweep), else one clear error."""
    path = teacher_path(cfg, "tune_train")
    if not path.is_file():
        raise CheckpointError(
            f"no tuning teacher at {path} for method '{cfg.method.name}' (KD trials are scored on the "
            f"tuning hold-out, so they use a teacher trained without it); train it first with "
            f"{train_command(cfg, 'tune_train')} (`make teacher` trains both teachers), or pass "
            "teacher.checkpoint=/path/to/teacher.pt (a teacher that saw the hold-out is flagged)"
        )
    return path
