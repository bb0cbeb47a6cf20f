"""A thin wrapper around an smp model that returns every KD tap from one forward pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.taps import Taps


class FCNHead(nn.Module):
    """The auxiliary segmentation head of the literature (PSPNet/DeepLabV3 codebases).

    3x3 conv (no bias) → BN → ReLU → dropout → 1x1 conv to classes, on one encoder stage.
    """

    def __init__(
        self, in_channels: int, hidden: int, num_classes: int, dropout: float, channelwise: bool = True
    ) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout) if channelwise else nn.Dropout(dropout),
            nn.Conv2d(hidden, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Segmenter(nn.Module):
    """encoder → decoder → 1x1 classifier (+ optional aux head), exposing every tap.

    Input images are uint8 (or float in 0..255) RGB ``[B, 3, H, W]``; the network's own input
    convention (channel order, mean, std) is applied here, on the device, so data loaders move uint8
    tensors and networks of different conventions (a CIRKD teacher fed BGR minus its mean, a student
    with torchvision's statistics) take the same batch. H and W must be multiples of :attr:`output_stride`
    (inference pads, see :mod:`bench.evaluation.inference`).
    """

    def __init__(
        self,
        net: nn.Module,
        aux_head: FCNHead | None,
        aux_stage: int,
        output_stride: int,
        mean: list[float],
        std: list[float],
        channel_order: str = "rgb",
    ) -> None:
        super().__init__()
        self.bgr = channel_order == "bgr"
        # how this network's codebase resizes logits (CIRKD: align_corners=True; smp, mmseg: False)
        self.align_corners = bool(getattr(net, "align_corners", False))
        self.classifier_dropout = getattr(net, "classifier_dropout", None) or nn.Identity()
        self.net = net
        self.aux_head = aux_head
        self.aux_stage = aux_stage
        self.output_stride = output_stride
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)

    @property
    def classifier(self) -> nn.Module:
        return self.net.segmentation_head[0]

    @property
    def head_stride(self) -> int:
        """Input pixels per ``logits_low``/``feat`` pixel (8 for DeepLabV3-OS8, 4 for DeepLabV3+)."""
        return int(getattr(self.net.segmentation_head[1], "scale_factor", 1) or 1)

    def forward(self, images: torch.Tensor, with_aux: bool = True) -> Taps:
        """All taps of one forward pass; ``with_aux=False`` skips the auxiliary head (inference needs
        only the logits; a teacher's aux logits may feed a KD term, so eval mode alone does not skip it)."""
        x = images.float().flip(1) if self.bgr else images.float()
        x = (x - self.mean) / self.std
        features = self.net.encoder(x)
        feat = self.net.decoder(features)
        logits_low = self.classifier(self.classifier_dropout(feat))
        aux = self.aux_head(features[self.aux_stage]) if self.aux_head is not None and with_aux else None
        return Taps(
            stages=[f for f in features[1:] if f.shape[1]],  # MiT encoders: an empty stride-2 slot
            feat=feat,
            logits_low=logits_low,
            aux_logits=aux,
            size=tuple(images.shape[-2:]),
            align_corners=self.align_corners,
        )

    def head_parameters(self) -> list[nn.Parameter]:
        """Decoder, classifier and aux head (for a head LR multiplier)."""
        modules = [self.net.decoder, self.net.segmentation_head]
        if self.aux_head is not None:
            modules.append(self.aux_head)
        return [p for m in modules for p in m.parameters()]

    def tap_channels(self) -> dict[str, int | list[int]]:
        """Channel counts of the taps: ``feat``, ``logits``, ``aux_logits`` and ``stages``."""
        channels: dict[str, int | list[int]] = {
            "stages": [c for c in self.net.encoder.out_channels[1:] if c],
            "feat": self.classifier.in_channels,
            "logits": self.classifier.out_channels,
        }
        if self.aux_head is not None:
            channels["aux_logits"] = self.classifier.out_channels
        return channels


def count_parameters(model: Segmenter, input_size: tuple[int, int]) -> tuple[int, int]:
    """(total, active): all parameters, and those of modules a forward pass actually calls.

    smp keeps the parameters of encoder stages that a shallow decoder never uses (PSPNet's 3-stage
    default: 12.0 M total, about 1.5 M run); the active count is what a fair size comparison needs.
    """
    called: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, *_: called.add(id(mod))) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    active = {
        id(p): p.numel() for m in model.modules() if id(m) in called for p in m.parameters(recurse=False)
    }
    total = sum(p.numel() for p in model.parameters())
    return total, sum(active.values())


def pad_to_multiple(
    x: torch.Tensor, multiple: int, value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right so H and W are multiples of ``multiple``; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=value)
    return x, (h, w)
