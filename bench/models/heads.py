"""Decode heads of the reference codebases, module for module (not smp's, whose heads differ).

Written from the papers' architecture as the official code builds it (CIRKD at 2d8ad0f,
``models/deeplabv3.py``, ``models/pspnet.py``; mmsegmentation 1.x ``ASPPHead``, ``PSPHead``), with
submodule names chosen so that their checkpoints map key for key (see :mod:`bench.models.keymaps`).
Each head returns the penultimate feature (the ``feat`` tap); the 1x1 classifier lives in
:class:`LiteratureNet` so that :class:`~bench.models.segmenter.Segmenter` finds it where it finds
smp's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    """``Conv(no bias) → BN → ReLU`` (indices 0, 1, 2), padding keeping the size."""
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ConvModule(nn.Module):
    """mmcv's ``ConvModule`` with BN and ReLU: attributes ``conv`` and ``bn`` (its state-dict names)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False
        )
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def resize_to(x: torch.Tensor, size: torch.Size | tuple[int, int], align_corners: bool) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class _Branch(nn.Module):
    """CIRKD's ``_ASPPConv``: the 3x3 atrous branch under the attribute ``block``."""

    def __init__(self, cin: int, cout: int, rate: int) -> None:
        super().__init__()
        self.block = conv_bn_relu(cin, cout, 3, rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _ImagePool(nn.Module):
    """CIRKD's image-pooling branch: GAP → 1x1 conv-BN-ReLU (``gap`` 1..3) → upsample."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_to(self.gap(x), x.shape[-2:], align_corners=True)


class CirkdASPP(nn.Module):
    """CIRKD's ASPP: 1x1, three 3x3 atrous branches (12/24/36), image pooling; project 5w → w
    (1x1 conv-BN-ReLU, Dropout 0.5)."""

    def __init__(self, cin: int, width: int, rates: tuple[int, int, int] = (12, 24, 36)) -> None:
        super().__init__()
        self.b0 = conv_bn_relu(cin, width)
        self.b1, self.b2, self.b3 = (_Branch(cin, width, r) for r in rates)
        self.b4 = _ImagePool(cin, width)
        self.project = nn.Sequential(*conv_bn_relu(5 * width, width), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))


class CirkdDeepLabHead(nn.Module):
    """CIRKD's ``_DeepLabHead`` up to its feature: ASPP → 3x3 conv-BN-ReLU → Dropout 0.1.

    Width 128 on a 512-channel input (ResNet-18, MobileNetV2 uses 128 too), 256 on 2048 (ResNet-101).
    The ``feat`` tap is this output, as CIRKD's ``x_feat_after_aspp`` (``block[0:4]``, dropout included).
    """

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.aspp = CirkdASPP(cin, width)
        self.block = nn.Sequential(*conv_bn_relu(width, width, 3), nn.Dropout(0.1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.block(self.aspp(features[-1]))


class CirkdPyramidPooling(nn.Module):
    """CIRKD's ``_PyramidPooling``: bins 1, 2, 3, 6, each 1x1 conv-BN-ReLU to in/4 (``conv1..4``),
    upsampled with align_corners=True and concatenated after the input (2x the input width)."""

    bins = (1, 2, 3, 6)

    def __init__(self, cin: int) -> None:
        super().__init__()
        for i in range(4):
            setattr(self, f"conv{i + 1}", conv_bn_relu(cin, cin // 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            resize_to(getattr(self, f"conv{i + 1}")(F.adaptive_avg_pool2d(x, b)), size, align_corners=True)
            for i, b in enumerate(self.bins)
        ]
        return torch.cat([x, *pooled], 1)


class CirkdPSPHead(nn.Module):
    """CIRKD's ``_PSPHead`` up to its feature: pyramid pooling → 3x3 conv-BN-ReLU → Dropout 0.1
    (width 128 on a 512-channel input, 512 on 2048)."""

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.psp = CirkdPyramidPooling(cin)
        self.block = nn.Sequential(*conv_bn_relu(2 * cin, width, 3), nn.Dropout(0.1))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.block(self.psp(features[-1]))


class MmsegASPPHead(nn.Module):
    """mmseg's ``ASPPHead`` up to ``_forward_feature``: image pool (GAP → 1x1 ConvModule), ASPP
    (dilation 1 → 1x1, 12/24/36 → 3x3), concatenated pool-first, 3x3 ``bottleneck``; resizing with
    align_corners=False. The classifier's Dropout2d 0.1 is :attr:`LiteratureNet.classifier_dropout`."""

    def __init__(self, cin: int, width: int, dilations: tuple[int, ...] = (1, 12, 24, 36)) -> None:
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(cin, width))
        self.aspp_modules = nn.ModuleList(ConvModule(cin, width, 1 if d == 1 else 3, d) for d in dilations)
        self.bottleneck = ConvModule((len(dilations) + 1) * width, width, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        outs = [resize_to(self.image_pool(x), x.shape[-2:], align_corners=False)]
        outs += [m(x) for m in self.aspp_modules]
        return self.bottleneck(torch.cat(outs, 1))


class MmsegPSPHead(nn.Module):
    """mmseg's ``PSPHead`` up to its feature: PPM (bins 1, 2, 3, 6; GAP → 1x1 ConvModule each,
    ``psp_modules.K.1``), concatenated after the input, 3x3 ``bottleneck``."""

    bins = (1, 2, 3, 6)

    def __init__(self, cin: int, width: int) -> None:
        super().__init__()
        self.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvModule(cin, width)) for b in self.bins
        )
        self.bottleneck = ConvModule(cin + len(self.bins) * width, width, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        outs = [x] + [resize_to(m(x), x.shape[-2:], align_corners=False) for m in self.psp_modules]
        return self.bottleneck(torch.cat(outs, 1))


class LiteratureNet(nn.Module):
    """encoder (smp ``tu-`` timm encoder) + one of the heads above + 1x1 classifier.

    Mirrors the attributes :class:`~bench.models.segmenter.Segmenter` reads from an smp model:
    ``encoder``, ``decoder``, ``segmentation_head`` (classifier, then an upsampling whose
    ``scale_factor`` is the head stride), plus ``classifier_dropout`` (mmseg's dropout between the
    feature and the classifier; identity for CIRKD, whose dropout is inside the head) and
    ``align_corners`` (how this codebase upsamples logits).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        width: int,
        num_classes: int,
        stride: int,
        align_corners: bool,
        classifier_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.classifier_dropout = nn.Dropout2d(classifier_dropout) if classifier_dropout else nn.Identity()
        self.segmentation_head = nn.Sequential(
            nn.Conv2d(width, num_classes, 1),
            nn.Upsample(scale_factor=stride, mode="bilinear", align_corners=align_corners),
        )
        self.align_corners = align_corners
