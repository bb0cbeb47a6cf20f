"""PSPNet with a dilated 5-stage encoder, as in the KD papers.

smp's PSPNet defaults to a 3-stage, non-dilated encoder (and keeps the unused stages' parameters).
The literature's PSPNet-R18 runs all five ResNet stages with the last two dilated (output stride 8)
and puts the pyramid pooling module on stage 5.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
from segmentation_models_pytorch.encoders import get_encoder

from bench.config.schema import ModelConfig
from bench.errors import ConfigError
from bench.models.registry import MODELS


@MODELS.register("pspnet")
def pspnet(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> smp.PSPNet:
    if cfg.output_stride not in (8, 16, 32):
        raise ConfigError(f"pspnet supports output_stride 8, 16 or 32, got {cfg.output_stride}")
    net = smp.PSPNet(
        encoder_name=cfg.encoder,
        encoder_weights=None,
        encoder_depth=5,
        classes=num_classes,
        upsampling=cfg.output_stride,
        **cfg.decoder_kwargs,
        **cfg.encoder_kwargs,
    )
    net.encoder = get_encoder(
        cfg.encoder, depth=5, weights=encoder_weights, output_stride=cfg.output_stride, **cfg.encoder_kwargs
    )
    return net
