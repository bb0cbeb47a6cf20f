"""Inference protocols: whole image or sliding window, optional horizontal flip.

Both pad the input to a multiple of the model's output stride (smp requires it) and crop the
prediction back. :func:`predict` returns class probabilities at input resolution; the sliding window
averages the windows' *logits* and applies the softmax after, as mmseg does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.config.schema import EvalConfig
from bench.data.pipeline import keep_ratio_factor
from bench.models.segmenter import Segmenter, pad_to_multiple
from bench.models.taps import upsample


def _forward(model: Segmenter, images: torch.Tensor) -> torch.Tensor:
    """Logits at the input's size (padded to the output stride for the forward pass, cropped back)."""
    padded, (h, w) = pad_to_multiple(images, model.output_stride)
    logits = model(padded, with_aux=False).logits
    return logits[..., :h, :w].float()


def slide_inference(
    model: Segmenter, images: torch.Tensor, crop: list[int], stride: list[int]
) -> torch.Tensor:
    """Logits ``[B, C, H, W]`` averaged over a sliding window (mmseg's ``slide_inference``).

    Windows of ``crop`` move by ``stride``; the last window in each direction is aligned to the
    border, so every pixel is covered. Where the image is smaller than the crop, the window shrinks
    to the image (mmseg does the same). Overlapping windows average their logits (float32); the
    softmax comes after, in :func:`predict`.
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
            logits = _forward(model, images[:, :, y0 : y0 + ch, x0 : x0 + cw])
            if out is None:
                out = images.new_zeros((b, logits.shape[1], h, w), dtype=torch.float32)
            out[:, :, y0 : y0 + ch, x0 : x0 + cw] += logits
            count[:, :, y0 : y0 + ch, x0 : x0 + cw] += 1
    return out / count


def _probabilities(model: Segmenter, images: torch.Tensor, cfg: EvalConfig) -> torch.Tensor:
    if cfg.mode == "slide":
        return slide_inference(model, images, cfg.crop_size, cfg.stride).softmax(1)
    return _forward(model, images).softmax(1)


@torch.inference_mode()
def predict(model: Segmenter, images: torch.Tensor, cfg: EvalConfig) -> torch.Tensor:
    """Class probabilities ``[B, C, H, W]`` (float32) for a batch under the configured protocol.

    With ``cfg.resize`` the batch is first resized (keep-ratio, bilinear) into that box and the
    probabilities are resized back to the input size. With ``cfg.flip`` the probabilities are averaged
    with those of the mirrored batch (mmseg's flip test-time augmentation averages probabilities too).
    """
    size = tuple(images.shape[-2:])
    if cfg.resize is not None:
        factor = keep_ratio_factor(size, cfg.resize)
        scaled = (int(size[0] * factor + 0.5), int(size[1] * factor + 0.5))
        images = F.interpolate(images.float(), size=scaled, mode="bilinear", align_corners=False)
    probs = _probabilities(model, images, cfg)
    if cfg.flip:
        probs = (probs + _probabilities(model, images.flip(-1), cfg).flip(-1)) / 2
    return upsample(probs, size)


__all__ = ["predict", "slide_inference", "upsample"]
