"""Inference protocols: whole image or sliding window, optional horizontal flip.

Both pad the input to a multiple of the model's output stride (smp requires it) and crop the
prediction back, and both return logits at input resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.config.schema import EvalConfig
from bench.data.pipeline import keep_ratio_factor
from bench.models.segmenter import Segmenter, pad_to_multiple
from bench.models.taps import upsample


def _forward(model: Segmenter, images: torch.Tensor) -> torch.Tensor:
    padded, (h, w) = pad_to_multiple(images, model.output_stride)
    logits = model(padded).logits
    return logits[..., :h, :w]


def _forward_flip(model: Segmenter, images: torch.Tensor, flip: bool) -> torch.Tensor:
    """Class probabilities, averaged with the flipped prediction when ``flip``."""
    probs = _forward(model, images).float().softmax(1)
    if flip:
        probs = (probs + _forward(model, images.flip(-1)).float().softmax(1).flip(-1)) / 2
    return probs


def slide_inference(
    model: Segmenter, images: torch.Tensor, crop: list[int], stride: list[int], flip: bool = False
) -> torch.Tensor:
    """Average the windows' class probabilities over a sliding window (mmseg's 'slide' mode).

    Windows of ``crop`` move by ``stride``; the last window in each direction is aligned to the
    border, so every pixel is covered. Images smaller than the crop are padded.
    """
    b, _, h, w = images.shape
    ch, cw = min(crop[0], h), min(crop[1], w)
    sh, sw = stride
    rows = max(-(-(h - ch) // sh), 0) + 1
    cols = max(-(-(w - cw) // sw), 0) + 1
    out: torch.Tensor | None = None
    count = images.new_zeros((1, 1, h, w), dtype=torch.float32)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = min(r * sh, h - ch), min(c * sw, w - cw)
            probs = _forward_flip(model, images[:, :, y0 : y0 + ch, x0 : x0 + cw], flip)
            if out is None:
                out = images.new_zeros((b, probs.shape[1], h, w), dtype=torch.float32)
            out[:, :, y0 : y0 + ch, x0 : x0 + cw] += probs
            count[:, :, y0 : y0 + ch, x0 : x0 + cw] += 1
    return out / count


@torch.inference_mode()
def predict(model: Segmenter, images: torch.Tensor, cfg: EvalConfig) -> torch.Tensor:
    """Class probabilities ``[B, C, H, W]`` for a batch under the configured protocol.

    With ``cfg.resize`` the batch is first resized (keep-ratio, bilinear) into that box and the
    probabilities are resized back to the input size.
    """
    size = tuple(images.shape[-2:])
    if cfg.resize is not None:
        factor = keep_ratio_factor(size, cfg.resize)
        scaled = (int(size[0] * factor + 0.5), int(size[1] * factor + 0.5))
        images = F.interpolate(images.float(), size=scaled, mode="bilinear", align_corners=False)
    if cfg.mode == "slide":
        probs = slide_inference(model, images, cfg.crop_size, cfg.stride, cfg.flip)
    else:
        probs = _forward_flip(model, images, cfg.flip)
    return upsample(probs, size)


__all__ = ["predict", "slide_inference", "upsample"]
