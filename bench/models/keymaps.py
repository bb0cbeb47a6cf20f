"""State-dict key layouts of the reference codebases, mapped onto this project's networks.

A CIRKD checkpoint (winycg/CIRKD@2d8ad0f, ``torch.save(model.state_dict())`` after unwrapping DDP)
holds ``pretrained.*`` (the backbone), ``head.*`` and ``auxlayer.*``; an mmseg checkpoint (mmengine's
``{"meta", "state_dict", ...}``) holds ``backbone.*``, ``decode_head.*`` and ``auxiliary_head.*``.
Their ImageNet backbone files hold the backbone keys without the prefix (plus the classifier,
dropped). Every function returns the key in :class:`~bench.models.segmenter.Segmenter`'s state dict
(or the encoder's, for backbone files), or None for a key this project's network has no place for.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# CIRKD's ResNet v1s stem (conv1/bn1, conv2/bn2, conv3/bn3) and mmseg's ResNetV1c ``stem.0..7``
# onto timm's deep stem (conv1 = Sequential(conv, bn, act, conv, bn, act, conv), then bn1).
_CIRKD_STEM = {
    "conv1": "conv1.0",
    "bn1": "conv1.1",
    "conv2": "conv1.3",
    "bn2": "conv1.4",
    "conv3": "conv1.6",
    "bn3": "bn1",
}
_MMSEG_STEM = {
    "stem.0": "conv1.0",
    "stem.1": "conv1.1",
    "stem.3": "conv1.3",
    "stem.4": "conv1.4",
    "stem.6": "conv1.6",
    "stem.7": "bn1",
}

# CIRKD's MobileNetV2 ``features.k`` (k >= 1) onto timm's ``blocks.stage.index``: blocks per stage.
_MBV2_STAGES = (1, 2, 3, 4, 3, 3, 1)
_MBV2_BLOCK = [(s, i) for s, n in enumerate(_MBV2_STAGES) for i in range(n)]
# expand ratio 1 (features.1): dw conv, BN, (ReLU6), pw conv, BN; others: pw, BN, dw, BN, pw-linear, BN
_MBV2_DS = {"0": "conv_dw", "1": "bn1", "3": "conv_pw", "4": "bn2"}
_MBV2_IR = {"0": "conv_pw", "1": "bn1", "3": "conv_dw", "4": "bn2", "6": "conv_pwl", "7": "bn3"}


def _resnet(key: str, stem: dict[str, str]) -> str | None:
    if key.startswith("layer"):
        return key
    for old, new in stem.items():
        if key.startswith(old + "."):
            return new + key[len(old) :]
    return None  # fc, avgpool: not in a segmentation backbone


def cirkd_resnet(key: str) -> str | None:
    """A key of CIRKD's ResNet v1s (``resnet*-imagenet.pth``, or after ``pretrained.``) → timm."""
    return _resnet(key, _CIRKD_STEM)


def mmseg_resnet(key: str) -> str | None:
    """A key of mmseg's ResNetV1c (``resnet*_v1c`` files, or after ``backbone.``) → timm."""
    return _resnet(key, _MMSEG_STEM)


def cirkd_mobilenetv2(key: str) -> str | None:
    """A key of CIRKD's MobileNetV2 (``features.k...``, or after ``pretrained.net.``) → timm."""
    m = re.fullmatch(r"features\.(\d+)\.(?:conv\.)?(\d+)\.(.+)", key)
    if not m:
        return None  # classifier
    k, j, param = int(m[1]), m[2], m[3]
    if k == 0:
        name = {"0": "conv_stem", "1": "bn1"}.get(j)
        return f"{name}.{param}" if name else None
    if k > len(_MBV2_BLOCK):
        return None  # features.18: the 1280-channel conv CIRKD never builds
    stage, index = _MBV2_BLOCK[k - 1]
    name = (_MBV2_DS if k == 1 else _MBV2_IR).get(j)
    return f"blocks.{stage}.{index}.{name}.{param}" if name else None


def backbone_map(codebase: str, encoder: str) -> Callable[[str], str | None]:
    """The key map of ``codebase``'s backbone files for a timm ``encoder`` (``tu-...``)."""
    if codebase == "cirkd":
        return cirkd_mobilenetv2 if "mobilenetv2" in encoder else cirkd_resnet
    if codebase == "mmseg":
        return mmseg_resnet
    raise ValueError(codebase)


def _cirkd_head(key: str) -> str | None:
    if key.startswith("auxlayer."):
        return "aux_head." + key[len("auxlayer.") :]
    for old, new in (
        ("head.block.4.", "net.segmentation_head.0."),  # DeepLabV3: the classifier is block[4]
        ("head.classifier.", "net.segmentation_head.0."),  # PSPNet
        ("head.", "net.decoder."),
    ):
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def _mmseg_head(key: str) -> str | None:
    for old, new in (
        ("decode_head.conv_seg.", "net.segmentation_head.0."),
        ("decode_head.", "net.decoder."),
        ("auxiliary_head.convs.0.conv.", "aux_head.block.0."),
        ("auxiliary_head.convs.0.bn.", "aux_head.block.1."),
        ("auxiliary_head.conv_seg.", "aux_head.block.4."),
    ):
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def segmentation_map(codebase: str, encoder: str) -> Callable[[str], str | None]:
    """The key map of ``codebase``'s whole-network checkpoints onto a Segmenter."""
    backbone = backbone_map(codebase, encoder)
    prefix = {"cirkd": "pretrained.net." if "mobilenetv2" in encoder else "pretrained.", "mmseg": "backbone."}
    prefix = prefix[codebase]

    def mapped(key: str) -> str | None:
        if key.startswith(prefix):
            inner = backbone(key[len(prefix) :])
            return None if inner is None else "net.encoder.model." + inner
        return (_cirkd_head if codebase == "cirkd" else _mmseg_head)(key)

    return mapped


_CLASSIFIERS = {
    "cirkd": ("head.block.4.weight", "head.classifier.weight"),  # DeepLabV3, PSPNet
    "mmseg": ("decode_head.conv_seg.weight",),
}
_SEGMENTATION_PREFIXES = {
    "cirkd": ("pretrained.", "head.", "auxlayer."),
    "mmseg": ("backbone.", "decode_head.", "auxiliary_head."),
}
_BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "features.", "stem.")  # ResNet v1s/V1c, MobileNetV2


def classifier_key(codebase: str, keys: set[str]) -> str | None:
    """The key of the classifier weight (its rows are the classes) in a ``codebase`` checkpoint."""
    return next((k for k in _CLASSIFIERS[codebase] if k in keys), None)


def layout_of(keys: set[str]) -> str | None:
    """Whose state dict ``keys`` look like: ``cirkd`` or ``mmseg`` (a segmentation network),
    ``backbone`` (an ImageNet backbone file, no head), ``segkd`` (this project's network) or None."""
    if any(k.startswith("net.encoder.") for k in keys):
        return "segkd"
    for codebase, prefixes in _SEGMENTATION_PREFIXES.items():
        if any(k.startswith(prefixes[1]) for k in keys) and any(k.startswith(prefixes[0]) for k in keys):
            return codebase
    if any(k.startswith(_BACKBONE_PREFIXES) for k in keys):
        return "backbone"
    return None


def official_key_map(codebase: str, encoder: str, arch: str) -> Callable[[str], str]:
    """The inverse of :func:`segmentation_map` for ResNet networks: a Segmenter key → the key the
    codebase's checkpoint holds (to write files laid out as that codebase saves them, e.g. in tests).
    ``arch``: the preset's (``cirkd_deeplabv3``, ``cirkd_pspnet``, ``mmseg_*``). A key without an
    official place raises ``KeyError``; every result maps back onto ``key`` (checked)."""
    if "mobilenetv2" in encoder:
        raise ValueError("official_key_map: ResNet encoders only")
    stem = {new: old for old, new in (_CIRKD_STEM if codebase == "cirkd" else _MMSEG_STEM).items()}
    if codebase == "cirkd":
        classifier = "head.classifier." if arch == "cirkd_pspnet" else "head.block.4."
        heads = [
            ("net.segmentation_head.0.", classifier),
            ("net.decoder.", "head."),
            ("aux_head.", "auxlayer."),
        ]
        prefix = "pretrained."
    else:
        heads = [(new, old) for old, new in (
            ("decode_head.conv_seg.", "net.segmentation_head.0."),
            ("decode_head.", "net.decoder."),
            ("auxiliary_head.convs.0.conv.", "aux_head.block.0."),
            ("auxiliary_head.convs.0.bn.", "aux_head.block.1."),
            ("auxiliary_head.conv_seg.", "aux_head.block.4."),
        )]  # fmt: skip
        prefix = "backbone."
    forward = segmentation_map(codebase, encoder)

    def official(key: str) -> str:
        found = None
        if key.startswith("net.encoder.model."):
            inner = key[len("net.encoder.model.") :]
            if inner.startswith("layer"):
                found = prefix + inner
            for new, old in sorted(stem.items(), key=lambda kv: -len(kv[0])):
                if found is None and inner.startswith(new + "."):
                    found = prefix + old + inner[len(new) :]
        else:
            for new, old in heads:
                if found is None and key.startswith(new):
                    found = old + key[len(new) :]
        if found is None or forward(found) != key:
            raise KeyError(f"{key} has no place in a {codebase} checkpoint")
        return found

    return official
