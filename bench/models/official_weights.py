"""The reference codebases' ImageNet backbone files, and the warning when a run goes without them.

The literature presets (``cirkd_*`` and ``mmseg_*`` architectures) default to
``encoder_weights: null`` because their weights are not on the Hugging Face Hub: CIRKD's README links
its own files (``resnet18-imagenet.pth``, ``resnet101-imagenet.pth``, ``mobilenetv2-imagenet.pth``),
mmseg loads ``open-mmlab://resnet*_v1c``. A paper's number is never reached from random init, so a
run on real data says so once, naming the file and the override.
"""

from __future__ import annotations

from bench.config.schema import ModelConfig

CIRKD_README = "https://github.com/winycg/CIRKD#readme"
_MMSEG = "https://download.openmmlab.com/pretrain/third_party/"
OFFICIAL_FILES = {
    ("cirkd", "tu-resnet18"): f"resnet18-imagenet.pth (CIRKD's README, {CIRKD_README})",
    ("cirkd", "tu-resnet101"): f"resnet101-imagenet.pth (CIRKD's README, {CIRKD_README})",
    ("cirkd", "tu-mobilenetv2_100"): f"mobilenetv2-imagenet.pth (CIRKD's README, {CIRKD_README})",
    ("mmseg", "tu-resnet18"): f"{_MMSEG}resnet18_v1c-b5776b93.pth",
    ("mmseg", "tu-resnet50"): f"{_MMSEG}resnet50_v1c-2cccc1ad.pth",
    ("mmseg", "tu-resnet101"): f"{_MMSEG}resnet101_v1c-e67eebb6.pth",
}
_warned: set[tuple[str, str, str]] = set()


def random_init_warning(model: ModelConfig, dataset: str, role: str) -> str | None:
    """The one-line warning for a literature preset trained from random init on a real dataset
    (None otherwise: weights given, synthetic data, another architecture, or said already in this
    process)."""
    codebase = model.arch.split("_", 1)[0]
    if model.encoder_weights is not None or dataset == "synthetic" or codebase not in ("cirkd", "mmseg"):
        return None
    key = (model.name, dataset, role)
    if key in _warned:
        return None
    _warned.add(key)
    name = OFFICIAL_FILES.get((codebase, model.encoder), f"{codebase}'s ImageNet file for {model.encoder}")
    return (
        f"{role} '{model.name}' trains from random init ({role}.encoder_weights=null) on {dataset}: "
        f"the papers start from ImageNet weights; download {name} and pass {role}.encoder_weights=PATH"
    )
