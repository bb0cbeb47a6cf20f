"""Teacher checkpoints: saved by ``make teacher`` under a key, loaded by key or explicit path.

The key is ``<teachers_dir>/<dataset>/<teacher preset>.pt`` for the teacher trained on the whole
training split (the finals' teacher), and ``<teacher preset>.tune-h<holdout_size>-s<holdout_seed>.pt``
for the one trained on the tuning-train part only (train minus the tuning hold-out), which tuning
trials use (``train.split=tune_train``), so that KD trials are never scored on images whose labels
their teacher fitted. A checkpoint records the architecture, the class count, the dataset and the
training images it was trained on (:mod:`bench.teacher_split`); loading one into a run with a
different architecture, class count or dataset is an error — never a silently random or mismatched
teacher.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from bench.config.schema import ModelConfig, RunConfig, TeacherConfig
from bench.errors import CheckpointError
from bench.models import Segmenter, build_model
from bench.models.taps import Taps
from bench.results import METRICS_UNIT, metrics_in_percent
from bench.utils.io import save_torch_atomic, sha256_file
from bench.utils.units import FRACTION, PERCENT

# Fields that define the network; weights source, name and checkpoint path do not.
ARCH_FIELDS = (
    "arch",
    "encoder",
    "encoder_kwargs",
    "output_stride",
    "decoder_kwargs",
    "aux_head",
    "aux_stage",
    "aux_channels",
    "channel_order",
    "mean",
    "std",
)
# Fields added after checkpoints were first written: a checkpoint without one had the default.
ARCH_DEFAULTS = {"channel_order": "rgb"}


def teacher_path(cfg: RunConfig, split: str | None = None) -> Path:
    """The checkpoint a run uses: ``teacher.checkpoint`` if set, else the key path of the part its
    training split (``split``, default ``train.split``) reads: the tuning-train part's teacher for
    ``tune_train``, the full-data teacher otherwise."""
    if cfg.teacher.checkpoint:
        return Path(cfg.teacher.checkpoint)
    folder = Path(cfg.teachers_dir) / cfg.dataset.name
    if is_tune_part(split if split is not None else cfg.train.split):
        return folder / f"{cfg.teacher.name}.{tune_part_label(cfg)}.pt"
    return folder / f"{cfg.teacher.name}.pt"


def is_tune_part(split: object) -> bool:
    """Whether a training split is the tuning-train part (train minus the tuning hold-out)."""
    return str(getattr(split, "value", split)) == "tune_train"


def tune_part_label(cfg: RunConfig) -> str:
    """``tune-h<holdout_size>-s<holdout_seed>``: which hold-out the tuning-train part leaves out."""
    return f"tune-h{cfg.dataset.holdout_size:g}-s{cfg.dataset.holdout_seed}"


def train_command(cfg: RunConfig, split: str | None = None) -> str:
    """The command that trains the teacher of ``cfg``'s part (``split``, default ``train.split``)."""
    part = " PART=tune" if is_tune_part(split if split is not None else cfg.train.split) else ""
    return f"`make teacher DATASET={cfg.dataset.name} TEACHER={cfg.teacher.name}{part}`"


def save_teacher(
    path: Path,
    model: Segmenter,
    model_cfg: ModelConfig,
    run: RunConfig,
    metrics: dict[str, Any],
    data: dict[str, Any] | None = None,
    trained_on: dict[str, Any] | None = None,
) -> Path:
    """Store a trained network as a teacher checkpoint (atomically); ``data``: ``{split: fingerprint}``
    of what it trained on (:mod:`bench.data.fingerprint`), which the teacher check compares;
    ``trained_on``: the record of its training images (:func:`bench.teacher_split.trained_on`), which
    the tuning hold-out check compares."""
    meta = {
        "dataset": run.dataset.name,
        "data": data,
        "num_classes": run.dataset.num_classes,
        "model": {k: getattr(model_cfg, k) for k in ("name", *ARCH_FIELDS)},
        "metrics": metrics,  # a result row's, in percent
        "metrics_unit": METRICS_UNIT,
        "seed": run.seed,
        "trained_on": trained_on,
    }
    return save_torch_atomic(path, {"state_dict": model.state_dict(), "meta": meta})


def read_teacher_meta(path: Path) -> dict[str, Any]:
    """What a teacher checkpoint says about itself (dataset, classes, architecture, metrics in percent;
    a checkpoint that records no unit was saved with fractions)."""
    meta = torch.load(path, map_location="cpu", weights_only=False)["meta"]
    if isinstance(meta.get("metrics"), dict):
        unit = meta.get("metrics_unit", FRACTION)
        meta = {**meta, "metrics": metrics_in_percent(meta["metrics"], unit), "metrics_unit": PERCENT}
    return meta


def load_teacher(cfg: RunConfig, device: torch.device) -> tuple[Segmenter, Path, str]:
    """Build the teacher, load and check its checkpoint; returns (model, path, sha256)."""
    path = teacher_path(cfg)
    if not path.is_file():
        how = train_command(cfg) if not cfg.teacher.checkpoint else "the path"
        raise CheckpointError(
            f"no teacher checkpoint at {path} (dataset '{cfg.dataset.name}', teacher "
            f"'{cfg.teacher.name}'); train one with {how}, or pass teacher.checkpoint=/path/to/teacher.pt"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        meta, state = ckpt["meta"], ckpt["state_dict"]
    except Exception as e:
        raise CheckpointError(f"teacher checkpoint {path} is not readable ({e})") from None
    _check_meta(meta, cfg, path)
    model_cfg = TeacherConfig(**{**asdict(cfg.teacher), "encoder_weights": None})
    model = build_model(model_cfg, cfg.dataset.num_classes, role="teacher")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(
            f"teacher checkpoint {path} does not fit teacher '{cfg.teacher.name}': {str(e).splitlines()[0]}"
        ) from None
    model.to(device).eval().requires_grad_(False)
    return model, path, sha256_file(path)


def _check_meta(meta: dict, cfg: RunConfig, path: Path) -> None:
    problems = []
    if meta["num_classes"] != cfg.dataset.num_classes:
        problems.append(f"{meta['num_classes']} classes, the dataset has {cfg.dataset.num_classes}")
    if meta["dataset"] != cfg.dataset.name:
        problems.append(f"trained on dataset '{meta['dataset']}', this run uses '{cfg.dataset.name}'")
    for key in ARCH_FIELDS:
        want, have = getattr(cfg.teacher, key), meta["model"].get(key, ARCH_DEFAULTS.get(key))
        if want != have:
            problems.append(f"teacher.{key} is {want!r} in the config but {have!r} in the checkpoint")
    if problems:
        raise CheckpointError(
            f"teacher checkpoint {path} does not match this run: " + "; ".join(problems) + ". Retrain it "
            f"({train_command(cfg)} after deleting the file; "
            "`make clean` deletes every generated result), or pass teacher.checkpoint=/path/to/teacher.pt"
        )


class FrozenTeacher:
    """Runs the teacher in eval mode under ``torch.inference_mode`` and hands out the needed taps."""

    def __init__(self, model: Segmenter, taps: set[str]) -> None:
        self.model = model
        self.taps = taps

    def __call__(self, images: torch.Tensor) -> Taps:
        with torch.inference_mode():
            out = self.model(images)
            if "logits" in self.taps:
                out.logits  # noqa: B018 - materialise the upsampled logits inside inference mode
        return out.detached_copy(self.taps)
