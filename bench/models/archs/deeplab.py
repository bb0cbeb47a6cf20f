"""DeepLabV3 (dilated, OS8 by default, as in the KD literature) and DeepLabV3+ (OS16 default)."""

from __future__ import annotations

import segmentation_models_pytorch as smp

from bench.config.schema import ModelConfig
from bench.errors import ConfigError
from bench.models.registry import MODELS


def _check_stride(cfg: ModelConfig) -> None:
    if cfg.output_stride not in (8, 16):
        raise ConfigError(f"{cfg.arch} supports output_stride 8 or 16, got {cfg.output_stride}")


@MODELS.register("deeplabv3")
def deeplabv3(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> smp.DeepLabV3:
    _check_stride(cfg)
    return smp.DeepLabV3(
        encoder_name=cfg.encoder,
        encoder_weights=encoder_weights,
        classes=num_classes,
        encoder_output_stride=cfg.output_stride,
        **cfg.decoder_kwargs,
        **cfg.encoder_kwargs,
    )


@MODELS.register("deeplabv3plus")
def deeplabv3plus(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> smp.DeepLabV3Plus:
    _check_stride(cfg)
    return smp.DeepLabV3Plus(
        encoder_name=cfg.encoder,
        encoder_weights=encoder_weights,
        classes=num_classes,
        encoder_output_stride=cfg.output_stride,
        **cfg.decoder_kwargs,
        **cfg.encoder_kwargs,
    )
