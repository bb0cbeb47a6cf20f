"""SegFormer (Xie et al., NeurIPS 2021): a MiT encoder and the all-MLP decoder, logits at 1/4.

smp's ``Segformer`` with ``mit_b0`` … ``mit_b5`` encoders: the decoder fuses the four stages at 1/4
into ``decoder_segmentation_channels`` (the ``feat`` tap; CIRKD v2's MiT-B0 256, MiT-B4 768,
winycg/CIRKD models/segformer.py ``decoder_dim``) and a 1×1 conv gives the logits. MiT encoders
need inputs divisible by 32: ``output_stride`` is 32 (the padding and crop multiple), the head's
stride 4. Their stride-2 slot has no channels and is left out of the ``stages`` taps.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp

from bench.config.schema import ModelConfig
from bench.errors import ConfigError
from bench.models.registry import MODELS


@MODELS.register("segformer")
def segformer(cfg: ModelConfig, num_classes: int, encoder_weights: str | None) -> smp.Segformer:
    if cfg.output_stride != 32:
        raise ConfigError(
            f"segformer: output_stride is the input multiple MiT encoders need, 32, got {cfg.output_stride}"
        )
    return smp.Segformer(
        encoder_name=cfg.encoder,
        encoder_weights=encoder_weights,
        classes=num_classes,
        **cfg.decoder_kwargs,
        **cfg.encoder_kwargs,
    )
