"""Checks before the first trial: what every run of a command will need is there, or one clear error.

A sweep, a final or a teacher run that would fail in every trial (a wrong data root, a missing
teacher checkpoint, pretrained weights that cannot be fetched, an output folder that cannot be
written) stops here, before its study is created or touched, with a :class:`~bench.errors.BenchError`
naming the cause and the fix (the entry points print it as one message and exit with status 2).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from bench.config.schema import ModelConfig, RunConfig
from bench.errors import CheckpointError, ConfigError, unwritable_message

log = logging.getLogger("bench")
_WARNED: set[str] = set()

# How long the one look at the weights' host may take before the weights count as unreachable.
HUB_TIMEOUT = 5.0


def check_run_needs(
    cfg: RunConfig,
    splits: Iterable[str],
    folders: Iterable[str | Path],
    teacher: bool | None = None,
    role: str = "student",
) -> None:
    """Every check a run of ``cfg`` needs: its data ``splits``, its teacher checkpoint (``teacher``:
    None = when the method needs one), the student's pretrained weights and writable ``folders``.
    ``role``: what the user calls the trained network (``teacher`` for ``make teacher``, whose
    network is the run's student), in the messages' overrides."""
    from bench.methods import needs_teacher

    check_writable(*folders)
    check_data(cfg, splits)
    if needs_teacher(cfg) if teacher is None else teacher:
        check_teacher(cfg)
    check_weights(cfg.student, role)
    warn_random_init(cfg, role)


def warn_random_init(cfg: RunConfig, role: str = "student") -> None:
    """One warning line (once per process) when a literature preset trains from random init on
    real data (:func:`bench.models.official_weights.random_init_warning`)."""
    from bench.models.official_weights import random_init_warning

    message = random_init_warning(cfg.student, cfg.dataset.name, role)
    if message:
        log.warning(message)


def check_data(cfg: RunConfig, splits: Iterable[str]) -> None:
    """The dataset's root, layout and split lists (lists the files; decodes none)."""
    from bench.data import build_split

    for split in splits:
        build_split(cfg.dataset, str(getattr(split, "value", split)))


def check_teacher(cfg: RunConfig) -> None:
    from bench.teachers import teacher_path

    path = teacher_path(cfg)
    if not path.is_file():
        raise CheckpointError(
            f"no teacher checkpoint at {path} for method '{cfg.method.name}'; train it first with "
            f"`make teacher DATASET={cfg.dataset.name} TEACHER={cfg.teacher.name}` or pass "
            "teacher.checkpoint=/path/to/teacher.pt"
        )
    check_teacher_data(cfg, path)


def check_teacher_data(cfg: RunConfig, path: Path) -> None:
    """The teacher was trained on this copy of the data: each split its checkpoint fingerprinted
    (:mod:`bench.data.fingerprint`) has the same fingerprint here; else an error naming both.

    A checkpoint written before teachers recorded their data cannot be checked: a warning names it
    (retraining it records the fingerprint); the runs' own rows still record what they read.
    """
    from bench.data.fingerprint import describe, split_fingerprint

    try:
        stat = path.stat()
        recorded = _recorded_data(str(path), stat.st_size, stat.st_mtime_ns)
    except Exception:  # an unreadable checkpoint: loading it names the problem
        return
    if not recorded:
        if str(path) not in _WARNED:
            _WARNED.add(str(path))
            log.warning(
                "teacher checkpoint %s records no data fingerprint (written by an older version): it cannot "
                "be checked that it was trained on this copy of the data; retrain it to have it checked",
                path,
            )
        return
    for split, theirs in recorded.items():
        ours = split_fingerprint(cfg.dataset, split)
        if ours["sha256"] != theirs.get("sha256"):
            raise CheckpointError(
                f"teacher checkpoint {path} was trained on other data: its {split} split is "
                f"{describe(theirs)}, this run's is {describe(ours)}; "
                "point dataset.root at the copy it was trained on, or retrain it on this one "
                f"(`make teacher DATASET={cfg.dataset.name} TEACHER={cfg.teacher.name}`)"
            )


@functools.lru_cache(maxsize=16)
def _recorded_data(path: str, size: int, mtime_ns: int) -> dict | None:
    """The data fingerprints a teacher checkpoint records (read once per file version and process:
    a sweep checks its teacher in the preflight and again in the study's settings)."""
    from bench.teachers import read_teacher_meta

    return read_teacher_meta(Path(path)).get("data")


def check_writable(*folders: str | Path) -> None:
    """Each folder exists (created if needed) and takes a file; else an error naming it and why."""
    for folder in folders:
        path = Path(folder)
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".segkd-write-check-"):
                pass
        except OSError as e:
            raise ConfigError(unwritable_message(e, path)) from None


def check_weights(model: ModelConfig, role: str) -> None:
    """Pretrained encoder weights: a local file that exists, or ``imagenet`` weights in the Hugging
    Face cache or fetched now, once (the trials then read the cache). Offline, the error names the
    file to download and where to pass it, after one quick look at the host (no retries)."""
    weights = model.encoder_weights
    if weights is None:
        return
    if weights != "imagenet":
        if not Path(weights).expanduser().is_file():
            raise ConfigError(
                f"{role}.encoder_weights={weights}: file not found; pass the path of the encoder's "
                f"weights file, imagenet (downloaded), or null (random init)"
            )
        return
    source = hub_file(model.encoder)
    if source is None:
        return  # an encoder smp fetches some other way: the trial reports what goes wrong
    repo, filename, revision = source
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo, filename, revision=revision), str):
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = f"{endpoint}/{repo}/resolve/{revision or 'main'}/{filename}"
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")  # read by the hub at import; a later change counts too
    offline = flag.lower() in ("1", "true", "yes", "on") if flag else constants.HF_HUB_OFFLINE
    reason = "HF_HUB_OFFLINE is set" if offline else reachable(endpoint)
    if reason is None:
        try:
            hf_hub_download(repo, filename, revision=revision)
            if filename == "model.safetensors" and repo.startswith("smp-hub/"):
                hf_hub_download(repo, "config.json", revision=revision)  # smp reads it too
            return
        except Exception as e:  # any hub error means: the trials could not fetch them either
            reason = (str(e).splitlines() or [type(e).__name__])[0]
    raise ConfigError(
        f"{role}.encoder_weights=imagenet: the weights of '{model.encoder}' are not in the Hugging Face "
        f"cache and cannot be downloaded ({reason}). Offline: download {url} on a machine with "
        f"network access, copy it here and pass {role}.encoder_weights=/path/to/{filename} "
        f'(or ARGS="{role}.encoder_weights=null" for random init)'
    )


def hub_file(encoder: str) -> tuple[str, str, str | None] | None:
    """(Hub repository, file, revision) that smp downloads for ``encoder``'s imagenet weights."""
    if encoder.startswith("tu-"):
        import timm

        cfg = timm.models.get_pretrained_cfg(encoder[3:])
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        return (hub_id, "model.safetensors", None) if hub_id else None
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders.get(encoder, {}).get("pretrained_settings", {}).get("imagenet")
    if not settings or "repo_id" not in settings:
        return None
    return settings["repo_id"], "model.safetensors", settings.get("revision")


def reachable(url: str) -> str | None:
    """None when ``url``'s host answers a TCP connection within :data:`HUB_TIMEOUT`; else why not."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=HUB_TIMEOUT):
            return None
    except OSError as e:
        return f"{parsed.hostname} unreachable: {e.strerror or e}"
