"""Synthetic textured shapes: the dataset of CI, the demo and the tests.

Each image is a cluttered background with a few objects. An object's class is the pair (shape,
texture), e.g. "disk/stripes" vs "disk/checker" vs "square/stripes", so telling classes apart needs
both the local texture and the global shape. Background distractors are irregular blobs filled with
the same textures, so texture alone does not make an object; colours are random per object, so colour
carries no class information. Pixels within ``ignore_width`` of an object boundary are labelled
``ignore_index`` (like VOC's boundary band).

Everything is generated on the fly from ``(dataset.seed, split, index)``: no files, identical on
every machine and independent of the run seed, so all runs of a comparison see the same data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from bench.config.schema import DatasetConfig
from bench.data import DATASETS
from bench.data.base import Sample, SegmentationDataset
from bench.errors import ConfigError
from bench.utils.runtime import derive_seed

SHAPES = ("disk", "square", "triangle", "diamond", "ring")
# Rendered samples are kept per process and shared by every dataset instance of the same generation
# settings and split (each trial builds new datasets), up to this many bytes in all.
CACHE_BYTES = 1 << 30
_RENDERED: dict[tuple, dict[int, Sample]] = {}
_cached_bytes = 0
TEXTURES = ("stripes", "checker", "dots", "plain")


@dataclass
class SyntheticConfig(DatasetConfig):
    name: str = "synthetic"
    num_classes: int = 7  # background + len(shapes) × len(textures)
    shapes: list[str] = field(default_factory=lambda: ["disk", "square", "triangle"])
    textures: list[str] = field(default_factory=lambda: ["stripes", "checker"])
    train_size: int = 512
    val_size: int = 128
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # height, width
    objects: list[int] = field(default_factory=lambda: [1, 3])  # min, max objects per image
    object_size: list[float] = field(default_factory=lambda: [0.18, 0.32])  # radius / min(H, W)
    distractors: list[int] = field(default_factory=lambda: [1, 3])  # textured background blobs
    texture_period: list[float] = field(default_factory=lambda: [4.0, 7.0])  # pixels
    noise: float = 0.06  # Gaussian pixel noise, fraction of the 0..255 range
    ignore_width: int = 1  # ignore band around object boundaries, pixels (0 = none)
    seed: int = 0  # generation seed, fixed across run seeds


@DATASETS.register("synthetic")
class SyntheticShapes(SegmentationDataset):
    config_class = SyntheticConfig
    _SPLIT_IDS: ClassVar[dict[str, int]] = {"train": 0, "val": 1}

    def __init__(self, cfg: SyntheticConfig, split: str) -> None:
        super().__init__(cfg, split)
        self.check_config(cfg)
        self.size = cfg.train_size if split == "train" else cfg.val_size
        key = (self.split, repr(sorted(asdict(cfg).items())))
        self._cache = _RENDERED.setdefault(key, {})

    @property
    def class_names(self) -> list[str]:
        cfg = self.cfg
        return ["background"] + [f"{s}/{t}" for s in cfg.shapes for t in cfg.textures]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.size:
            raise IndexError(index)
        sample = self._cache.get(index)
        if sample is None:
            sample = self.generate(index)
            _keep(self._cache, index, sample)
        return sample

    def generate(self, index: int) -> Sample:
        """Render sample ``index`` of this split (deterministic)."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, self._SPLIT_IDS[self.split], index))
        h, w = cfg.image_size
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
        )

        def rand(lo: float = 0.0, hi: float = 1.0) -> float:
            return lo + (hi - lo) * torch.rand((), generator=g).item()

        def randint(lo: int, hi: int) -> int:  # inclusive
            return int(torch.randint(lo, hi + 1, (), generator=g))

        # Background: a smooth colour gradient.
        c0, c1 = torch.rand(3, generator=g), torch.rand(3, generator=g)
        angle = rand(0, math.pi)
        ramp = ((xx * math.cos(angle) + yy * math.sin(angle)) / max(h, w)).clamp(0, 1)
        image = c0[:, None, None] * (1 - ramp) + c1[:, None, None] * ramp
        label = torch.zeros(h, w, dtype=torch.int64)
        scale = min(h, w)

        def paint(mask: torch.Tensor, texture: str) -> None:
            period = rand(*cfg.texture_period)
            pattern = _texture(texture, xx, yy, period, rand(0, math.pi), rand(0, period), rand(0, period))
            a, b = _contrasting_colours(g)
            image.copy_(
                torch.where(mask, a[:, None, None] * pattern + b[:, None, None] * (1 - pattern), image)
            )

        # Distractors: irregular blobs (unions of circles) with object textures, labelled background.
        for _ in range(randint(*cfg.distractors)):
            cy, cx, r = rand(0, h), rand(0, w), rand(*cfg.object_size) * scale * 0.6
            mask = torch.zeros(h, w, dtype=torch.bool)
            for _ in range(3):
                oy, ox = rand(-r, r), rand(-r, r)
                mask |= (yy - cy - oy) ** 2 + (xx - cx - ox) ** 2 <= (r * rand(0.5, 1.0)) ** 2
            paint(mask, cfg.textures[randint(0, len(cfg.textures) - 1)])

        # Objects, drawn in order; later ones occlude earlier ones.
        for _ in range(randint(*cfg.objects)):
            s, t = randint(0, len(cfg.shapes) - 1), randint(0, len(cfg.textures) - 1)
            r = rand(*cfg.object_size) * scale
            cy, cx = rand(r * 0.5, h - r * 0.5), rand(r * 0.5, w - r * 0.5)
            mask = _shape(cfg.shapes[s], yy - cy, xx - cx, r, rand(0, 2 * math.pi))
            paint(mask, cfg.textures[t])
            label[mask] = 1 + s * len(cfg.textures) + t

        if cfg.ignore_width > 0:
            label[_boundary(label, cfg.ignore_width)] = cfg.ignore_index
        image = image + cfg.noise * torch.randn(image.shape, generator=g)
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
        return image, label

    @classmethod
    def check_config(cls, cfg: SyntheticConfig) -> None:
        for key, values, valid in (("shapes", cfg.shapes, SHAPES), ("textures", cfg.textures, TEXTURES)):
            bad = [v for v in values if v not in valid]
            if bad or not values:
                raise ConfigError(f"dataset.{key}={values}: unknown {bad}; valid: {', '.join(valid)}")
        expected = 1 + len(cfg.shapes) * len(cfg.textures)
        if cfg.num_classes != expected:
            raise ConfigError(
                f"dataset.num_classes={cfg.num_classes} but 1 + len(shapes)·len(textures) = {expected}; "
                "change num_classes or the shapes/textures lists"
            )
        if min(cfg.train_size, cfg.val_size) < 1 or min(cfg.image_size) < 8:
            raise ConfigError("dataset.train_size/val_size must be ≥ 1 and dataset.image_size ≥ 8 pixels")


def _keep(cache: dict[int, Sample], index: int, sample: Sample) -> None:
    """Cache a rendered sample while the process-wide cache is under :data:`CACHE_BYTES`."""
    global _cached_bytes
    size = sum(t.numel() * t.element_size() for t in sample)
    if _cached_bytes + size <= CACHE_BYTES:
        cache[index] = sample
        _cached_bytes += size


def _shape(kind: str, dy: torch.Tensor, dx: torch.Tensor, r: float, theta: float) -> torch.Tensor:
    u = dx * math.cos(theta) + dy * math.sin(theta)
    v = -dx * math.sin(theta) + dy * math.cos(theta)
    if kind == "disk":
        return u**2 + v**2 <= r**2
    if kind == "square":
        return torch.maximum(u.abs(), v.abs()) <= r * 0.85
    if kind == "diamond":
        return u.abs() + v.abs() <= r * 1.15
    if kind == "ring":
        d2 = u**2 + v**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    # triangle: intersection of three half-planes of an equilateral triangle with circumradius r
    inside = torch.ones_like(u, dtype=torch.bool)
    for k in range(3):
        a = theta + 2 * math.pi * k / 3
        inside &= dx * math.cos(a) + dy * math.sin(a) <= r * 0.6
    return inside


def _texture(
    kind: str, xx: torch.Tensor, yy: torch.Tensor, period: float, angle: float, oy: float, ox: float
) -> torch.Tensor:
    """A {0, 1} pattern of the given kind; orientation and phase are random per object."""
    u = (xx - ox) * math.cos(angle) + (yy - oy) * math.sin(angle)
    v = -(xx - ox) * math.sin(angle) + (yy - oy) * math.cos(angle)
    if kind == "stripes":
        return (torch.sin(2 * math.pi * u / period) > 0).float()
    if kind == "checker":
        return ((torch.floor(2 * u / period) + torch.floor(2 * v / period)) % 2).float()
    if kind == "dots":
        du, dv = torch.remainder(u, period) - period / 2, torch.remainder(v, period) - period / 2
        return (du**2 + dv**2 <= (period / 3.2) ** 2).float()
    return torch.ones_like(u)


def _contrasting_colours(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random colours at least 0.35 apart in mean intensity, so every texture is visible."""
    a = torch.rand(3, generator=g)
    shift = 0.35 + 0.3 * torch.rand((), generator=g)
    b = torch.where(a.mean() > 0.5, a - shift, a + shift).clamp(0, 1)
    return a, b


def _boundary(label: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within ``width`` of a change of label."""
    k = 2 * width + 1
    lab = label[None, None].float()
    hi = F.max_pool2d(lab, k, stride=1, padding=width)
    lo = -F.max_pool2d(-lab, k, stride=1, padding=width)
    return (hi != lo)[0, 0]
