"""What one forward pass of a :class:`~bench.models.segmenter.Segmenter` exposes to KD losses."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

TAP_NAMES = ("stages", "feat", "logits_low", "logits", "aux_logits")


@dataclass
class Taps:
    """The taps KD needs, all from one forward pass.

    Attributes:
        stages: encoder feature maps, highest resolution first (the input itself excluded).
        feat: the penultimate decoder feature (DeepLabV3: after ASPP + 3x3 conv, before the
            classifier; PSPNet: the PSP-module output), ``[B, D, h, w]``.
        logits_low: class logits at the head's native resolution (1/8 for OS8), ``[B, C, h, w]``.
        aux_logits: logits of the auxiliary FCN head at its stage's resolution, or None.
        size: the input's ``(H, W)``; :attr:`logits` are upsampled to it.
        align_corners: how the network's codebase upsamples logits (CIRKD's models: True).
    """

    stages: list[torch.Tensor]
    feat: torch.Tensor
    logits_low: torch.Tensor
    aux_logits: torch.Tensor | None = None
    size: tuple[int, int] | None = None
    align_corners: bool = False
    _logits: torch.Tensor | None = field(default=None, repr=False)

    @property
    def logits(self) -> torch.Tensor:
        """Logits bilinearly upsampled to the input size (computed on first use)."""
        if self._logits is None:
            size = self.size or self.logits_low.shape[-2:]
            self._logits = upsample(self.logits_low, size, self.align_corners)
        return self._logits

    @classmethod
    def from_logits(
        cls, logits: torch.Tensor, feat: torch.Tensor | None = None, aux_logits: torch.Tensor | None = None
    ) -> Taps:
        """Taps from plain tensors, for computing a loss term outside training."""
        return cls(
            stages=[],
            feat=feat,
            logits_low=logits,
            aux_logits=aux_logits,  # type: ignore[arg-type]
            size=tuple(logits.shape[-2:]),
        )

    def detached_copy(self, keep: set[str]) -> Taps:
        """Plain (non-inference) copies of the taps in ``keep``; others are dropped.

        Tensors made under ``torch.inference_mode`` cannot be saved for backward; a teacher's taps
        are cloned once here so that losses can use them.
        """

        def clone(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.clone()

        return Taps(
            stages=[t.clone() for t in self.stages] if "stages" in keep else [],
            feat=clone(self.feat) if "feat" in keep else None,  # type: ignore[arg-type]
            logits_low=clone(self.logits_low),  # type: ignore[arg-type]
            aux_logits=clone(self.aux_logits) if "aux_logits" in keep else None,
            size=self.size,
            align_corners=self.align_corners,
            _logits=clone(self._logits) if "logits" in keep else None,
        )


def upsample(
    x: torch.Tensor, size: tuple[int, int] | torch.Size, align_corners: bool = False
) -> torch.Tensor:
    """Bilinear resize, the single resizing rule of the project: align_corners=False, except for a
    network whose own codebase resizes with True (CIRKD's; :attr:`Taps.align_corners`)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)
