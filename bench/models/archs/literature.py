"""The reference codebases' own networks: CIRKD's (CVPR 2022, winycg/CIRKD@2d8ad0f) and mmseg's.

Backbones are timm models through smp's ``tu-`` encoders, which build the same networks:

- CIRKD's ResNet "v1s" = timm ResNet with ``stem_type=deep, stem_width=64`` (3x3 convs 64-64-128);
  mmseg's ResNetV1c = ``stem_type=deep, stem_width=32`` (32-32-64), both with a plain 1x1 strided
  shortcut. At output stride 8 timm dilates layer3 by 2 and layer4 by 4 with the first block of each
  dilated stage one step lower, as CIRKD's ``_make_layer`` and mmseg's ``contract_dilation``.
- mmseg's BasicBlock dilates only its first 3x3 conv (``conv2`` keeps dilation 1), timm's both; the
  mmseg builder sets ``conv2`` back to dilation 1 (ResNet-18/34 only; Bottleneck blocks agree).
- CIRKD's dilated MobileNetV2 (features up to the 320-channel block) = timm ``mobilenetv2_100``
  ``features_only`` at output stride 8 (same first-block dilation rule).

Heads are :mod:`bench.models.heads`. ``decoder_kwargs``: ``width`` (head channels).
"""

from __future__ import annotations

from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from bench.config.schema import ModelConfig
from bench.errors import ConfigError
from bench.models.heads import (
    CirkdDeepLabHead,
    CirkdPSPHead,
    LiteratureNet,
    MmsegASPPHead,
    MmsegPSPHead,
)
from bench.models.registry import MODELS


def _encoder(cfg: ModelConfig, encoder_weights: str | None) -> nn.Module:
    if cfg.output_stride not in (8, 16):
        raise ConfigError(f"{cfg.arch} supports output_stride 8 or 16, got {cfg.output_stride}")
    if not cfg.encoder.startswith("tu-"):
        raise ConfigError(f"{cfg.arch} builds timm encoders (tu-<model>), got encoder '{cfg.encoder}'")
    return get_encoder(
        cfg.encoder, depth=5, weights=encoder_weights, output_stride=cfg.output_stride, **cfg.encoder_kwargs
    )


def _width(cfg: ModelConfig) -> int:
    unknown = set(cfg.decoder_kwargs) - {"width"}
    if unknown or "width" not in cfg.decoder_kwargs:
        raise ConfigError(
            f"{cfg.arch}: decoder_kwargs takes exactly 'width' (head channels), got {cfg.decoder_kwargs}"
        )
    return int(cfg.decoder_kwargs["width"])


def _undilate_basic_conv2(encoder: nn.Module) -> None:
    """mmseg's BasicBlock: the second 3x3 conv is never dilated."""
    for module in encoder.modules():
        if type(module).__name__ == "BasicBlock":
            module.conv2.dilation, module.conv2.padding = (1, 1), (1, 1)


def _net(cfg: ModelConfig, head: type, num_classes: int, weights: str | None, mmseg: bool) -> LiteratureNet:
    encoder = _encoder(cfg, weights)
    if mmseg:
        _undilate_basic_conv2(encoder)
    width = _width(cfg)
    return LiteratureNet(
        encoder,
        head(encoder.out_channels[-1], width),
        width,
        num_classes,
        cfg.output_stride,
        align_corners=not mmseg,
        classifier_dropout=0.1 if mmseg else 0.0,
    )


@MODELS.register("cirkd_deeplabv3")
def cirkd_deeplabv3(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> LiteratureNet:
    return _net(cfg, CirkdDeepLabHead, num_classes, encoder_weights, mmseg=False)


@MODELS.register("cirkd_pspnet")
def cirkd_pspnet(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> LiteratureNet:
    return _net(cfg, CirkdPSPHead, num_classes, encoder_weights, mmseg=False)


@MODELS.register("mmseg_deeplabv3")
def mmseg_deeplabv3(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> LiteratureNet:
    return _net(cfg, MmsegASPPHead, num_classes, encoder_weights, mmseg=True)


@MODELS.register("mmseg_pspnet")
def mmseg_pspnet(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> LiteratureNet:
    return _net(cfg, MmsegPSPHead, num_classes, encoder_weights, mmseg=True)
