"""``python -m bench.convert {cirkd,mmseg} SRC --preset NAME --dataset NAME -o DST.pt``

Turns an official segmentation checkpoint into a teacher checkpoint of this project, usable as
``teacher.checkpoint=DST.pt`` (or :func:`bench.models.from_checkpoint`). SRC is read as the codebase's
training script saved it: CIRKD's bare state dict (``model.module`` unwrapped; a DDP ``module.``
prefix is removed too), mmseg's ``{"meta", "state_dict", ...}``. The preset must be that codebase's
network (``deeplabv3_r101``, ``pspnet_r18``, ... for CIRKD; ``mmseg_*`` for mmseg); every tensor must
find its place with the preset's shape, and the classifier must have the dataset's class count.
Anything else exits with status 2 and one line naming the file and what differs.
"""

# ruff: noqa: E402  (--help is answered before the imports below)
from __future__ import annotations

from bench.cli import answer_help

answer_help(__name__, __doc__.strip())  # before torch: --help answers at once

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from bench.config.compose import conf_dir, load_config
from bench.config.schema import ModelConfig
from bench.errors import BenchError, CheckpointError, ConfigError, unwritable_message
from bench.models.files import load_file, unwrap_state_dict
from bench.models.keymaps import classifier_key, layout_of, segmentation_map
from bench.utils.io import save_torch_atomic, sha256_file

CODEBASES = ("cirkd", "mmseg")
_PRESETS = {"cirkd": "deeplabv3_r18, deeplabv3_r101, pspnet_r18, deeplabv3_mbv2", "mmseg": "mmseg_*"}


def preset_config(name: str) -> ModelConfig:
    """A model preset by name, from ``conf/teacher`` or ``conf/student``."""
    for group in ("teacher", "student"):
        if (conf_dir() / group / f"{name}.yaml").is_file():
            return getattr(load_config([f"{group}={name}", f"{group}.encoder_weights=null"]), group)
    names = sorted(p.stem for g in ("teacher", "student") for p in (conf_dir() / g).glob("*.yaml"))
    raise ConfigError(f"--preset {name}: no such model preset; presets: {', '.join(names)}")


def convert(codebase: str, src: Path, preset: str, dataset: str, dst: Path) -> Path:
    """Read ``src`` as ``codebase`` saves it, check it against ``preset`` and ``dataset``, write ``dst``."""
    from bench.models import build_model
    from bench.teachers import ARCH_FIELDS

    cfg = preset_config(preset)
    if not cfg.arch.startswith(f"{codebase}_"):
        others = f"cirkd's presets: {_PRESETS['cirkd']}; mmseg's: {_PRESETS['mmseg']}"
        raise ConfigError(f"--preset {preset} is not a {codebase} network (arch {cfg.arch}); {others}")
    num_classes = load_config([f"dataset={dataset}"]).dataset.num_classes
    obj = load_file(src)
    if isinstance(obj, dict) and isinstance(obj.get("meta"), dict) and "model" in obj["meta"]:
        raise CheckpointError(
            f"{src} is already a teacher checkpoint of this project (converted or `make teacher`): "
            f"use it as teacher.checkpoint={src} or bench.models.from_checkpoint('{src}')"
        )
    state = unwrap_state_dict(obj, src)
    _check_layout(codebase, src, set(state))

    cls_key = classifier_key(codebase, set(state))
    if cls_key is None:
        raise CheckpointError(
            f"{src}: no {codebase} classifier weight (" + ", ".join(_CLASSIFIER_NAMES[codebase]) + "); "
            f"not a {codebase} segmentation checkpoint (first keys: {list(state)[:3]})"
        )
    if state[cls_key].shape[0] != num_classes:
        raise CheckpointError(
            f"{src}: {state[cls_key].shape[0]} classes in the checkpoint, "
            f"dataset '{dataset}' has {num_classes}"
        )

    model = build_model(cfg, num_classes, role="preset")
    own = model.state_dict()
    mapping = segmentation_map(codebase, cfg.encoder)
    converted, unplaced = {}, []
    for key, value in state.items():
        target = mapping(key)
        if target is None or target not in own:
            unplaced.append(key)
        elif own[target].shape != value.shape:
            raise CheckpointError(
                f"{src}: {key} has shape {tuple(value.shape)}, preset {preset} needs "
                f"{tuple(own[target].shape)}; another architecture than {preset}?"
            )
        else:
            converted[target] = value
    missing = [k for k in own if k not in converted]
    if unplaced or missing:
        raise CheckpointError(
            f"{src} does not fit preset {preset}: {len(unplaced)} tensors without a place "
            f"(e.g. {unplaced[:2]}), {len(missing)} of the preset's missing (e.g. {missing[:2]}); "
            "another architecture or preset?"
        )
    model.load_state_dict(converted)
    model_meta = {"name": cfg.name, **{k: getattr(cfg, k) for k in ARCH_FIELDS}}
    meta = {
        "dataset": dataset,
        "num_classes": num_classes,
        "model": {**asdict(cfg), **model_meta},
        "metrics": {},  # not measured here: the codebase's own figure is its paper's
        "seed": None,
        "source": {"codebase": codebase, "file": str(src), "sha256": sha256_file(src)},
    }
    try:
        return save_torch_atomic(dst, {"state_dict": model.state_dict(), "meta": meta})
    except OSError as e:
        raise ConfigError(unwritable_message(e, dst)) from None


_CLASSIFIER_NAMES = {"cirkd": ("head.block.4", "head.classifier"), "mmseg": ("decode_head.conv_seg",)}


def _check_layout(codebase: str, src: Path, keys: set[str]) -> None:
    """Another codebase's checkpoint, a backbone file or this project's network: say which."""
    found = layout_of(keys)
    if found in (codebase, None):
        return
    if found == "backbone":
        raise CheckpointError(
            f"{src} is an ImageNet backbone file (no segmentation head: first keys {sorted(keys)[:3]}), "
            "not a segmentation checkpoint; pass it as student.encoder_weights=PATH "
            "(or teacher.encoder_weights=PATH) to train from it"
        )
    if found == "segkd":
        raise CheckpointError(
            f"{src} holds this project's network (net.encoder.* keys), not a {codebase} checkpoint; "
            "a teacher checkpoint of this project needs no conversion (teacher.checkpoint=PATH)"
        )
    raise CheckpointError(
        f"{src} is {'an' if found == 'mmseg' else 'a'} {found} checkpoint, not a {codebase} one: "
        f"python -m bench.convert {found} {src} --preset ... ({found}'s presets: {_PRESETS[found]})"
    )


def usage_hint(preset: str, path: Path) -> str:
    """How to use a converted file: a teacher preset is a run's teacher; a student preset is not."""
    loaded = f"in Python: bench.models.from_checkpoint('{path}')"
    if (conf_dir() / "teacher" / f"{preset}.yaml").is_file():
        return f"use teacher={preset} teacher.checkpoint={path}, or {loaded}"
    return f"{preset} is a student preset, no run's teacher (conf/teacher); {loaded}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.convert", description=__doc__.split("\n\n")[1])
    parser.add_argument("codebase", choices=CODEBASES)
    parser.add_argument("src", type=Path, help="the official checkpoint file")
    parser.add_argument(
        "--preset", required=True, help="model preset, e.g. deeplabv3_r101 or mmseg_pspnet_r101"
    )
    parser.add_argument("--dataset", required=True, help="dataset preset, e.g. cityscapes")
    parser.add_argument("-o", "--out", type=Path, required=True, help="teacher checkpoint to write")
    args = parser.parse_args(argv)
    try:
        path = convert(args.codebase, args.src, args.preset, args.dataset, args.out)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{path}: {args.preset} for {args.dataset}; {usage_hint(args.preset, path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
