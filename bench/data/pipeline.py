"""The training input pipeline: per-sample seeded augmentation, a resumable sampler, loaders.

Every training sample is drawn as ``(index, sample_seed)``: the sampler fixes which image comes at
which position of the run and the seed of its augmentation, both derived from the run seed. So the
stream of batches depends on nothing but the seed — not on the number of DataLoader workers — and a
run resumed at step k sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset, Sampler

from bench.config.schema import AugmentConfig
from bench.utils.runtime import derive_seed


def augment(
    image: torch.Tensor,
    label: torch.Tensor,
    cfg: AugmentConfig,
    crop_size: list[int] | None,
    ignore_index: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale → pad/crop → flip → photometric distortion → jitter, image and label kept aligned.

    Args:
        image: uint8 ``[3, H, W]``.
        label: int64 ``[H, W]``.
        crop_size: ``[h, w]``; the image is padded (label with ``ignore_index``) when smaller.
        seed: the sample's seed; the same seed gives the same augmentation.
    """
    g = torch.Generator().manual_seed(seed)
    h, w = label.shape
    s = _scale_factor(cfg, (h, w), g)
    size = (h, w) if s is None else (max(1, round(h * s)), max(1, round(w * s)))
    if s is not None:
        image = TF.resize(image, list(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    # The label is resized by nearest-neighbour gathering of only the rows and columns that are kept
    # (the crop window), not the whole rescaled label: identical values, a fraction of the work.
    ch, cw = crop_size if crop_size is not None else size
    ph, pw = max(ch - size[0], 0), max(cw - size[1], 0)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph), value=0)
    H, W = size[0] + ph, size[1] + pw

    def draw() -> tuple[int, int]:
        top = int(torch.randint(H - ch + 1, (), generator=g))
        return top, int(torch.randint(W - cw + 1, (), generator=g))

    def window(top: int, left: int) -> torch.Tensor:
        return _nearest_window(label, size, top, left, ch, cw, ignore_index)

    top, left = draw() if crop_size is not None else (0, 0)
    if crop_size is not None and cfg.cat_max_ratio < 1:  # mmseg: up to 10 redraws, then keep the last
        for _ in range(10):
            if _balanced(window(top, left), ignore_index, cfg.cat_max_ratio):
                break
            top, left = draw()
    image = image[:, top : top + ch, left : left + cw]
    label = window(top, left) if s is not None or crop_size is not None else label
    if cfg.hflip and torch.rand((), generator=g).item() < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    if cfg.photometric:
        image = photometric_distortion(image, g)
    if cfg.jitter > 0:
        b, c, s = (1 + cfg.jitter * (2 * torch.rand(3, generator=g) - 1)).tolist()
        image = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, b), c), s)
    return image.contiguous(), label.contiguous()


def _scale_factor(cfg: AugmentConfig, shape: tuple[int, int], g: torch.Generator) -> float | None:
    """The resize factor of this sample; None when the configuration never rescales."""
    lo, hi = cfg.scale_range
    if (lo, hi) == (1.0, 1.0):
        ratio = 1.0
    elif cfg.scale_step > 0:
        steps = round((hi - lo) / cfg.scale_step)
        ratio = round(lo + cfg.scale_step * int(torch.randint(steps + 1, (), generator=g)), 6)
    else:
        ratio = lo + (hi - lo) * torch.rand((), generator=g).item()
    if cfg.base_size is None:
        return None if (lo, hi) == (1.0, 1.0) else ratio
    return keep_ratio_factor(shape, cfg.base_size, ratio)


def keep_ratio_factor(shape: tuple[int, int], base_size: list[int], ratio: float = 1.0) -> float:
    """mmseg's keep-ratio Resize: the factor that fits the image into the box ``ratio · base_size``.

    The scaled box ``(int(long·ratio), int(short·ratio))`` bounds both the long and the short side.
    """
    box_long, box_short = max(base_size), min(base_size)
    h, w = shape
    return min(int(box_long * ratio) / max(h, w), int(box_short * ratio) / min(h, w))


def _nearest_window(
    label: torch.Tensor, size: tuple[int, int], top: int, left: int, ch: int, cw: int, ignore_index: int
) -> torch.Tensor:
    """Rows ``top..top+ch`` and columns ``left..left+cw`` of ``label`` nearest-resized to ``size``.

    Uses torch's "nearest" rule (source index ⌊i·in/out⌋ in float32), so the result equals resizing
    the whole label and cropping it; positions beyond ``size`` (the padding) are ``ignore_index``.
    """
    rows = _nearest_indices(label.shape[0], size[0], top, ch)
    cols = _nearest_indices(label.shape[1], size[1], left, cw)
    out = label[rows.clamp(min=0)[:, None], cols.clamp(min=0)[None, :]]
    return out.masked_fill_((rows < 0)[:, None] | (cols < 0)[None, :], ignore_index)


def _nearest_indices(n_in: int, n_out: int, start: int, length: int) -> torch.Tensor:
    pos = torch.arange(start, start + length)
    scale = torch.tensor(n_in, dtype=torch.float32) / torch.tensor(n_out, dtype=torch.float32)
    index = (pos.to(torch.float32) * scale).floor().long().clamp(max=n_in - 1)
    return torch.where(pos < n_out, index, -1)


def _balanced(label: torch.Tensor, ignore_index: int, max_ratio: float) -> bool:
    """mmseg's crop test: at least two classes and none covering ``max_ratio`` of labelled pixels."""
    counts = torch.bincount(label[label != ignore_index].flatten())
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.max().item() / counts.sum().item() < max_ratio


def photometric_distortion(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """mmseg's PhotoMetricDistortion on a uint8 ``[3, H, W]`` RGB image (default parameters).

    Brightness (+U(−32, 32)), then contrast (×U(0.5, 1.5)) either first or last, saturation
    (S ×U(0.5, 1.5) in HSV) and hue (H + U{−18..18} on OpenCV's 0..180 scale), each applied with
    probability 1/2 and clipped to 0..255 as mmseg does. Computed in float with one HSV round trip
    and rounded once, so values differ slightly from mmseg's OpenCV uint8 round trips.
    """

    def coin() -> bool:
        return bool(torch.randint(2, (), generator=g))

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=g).item()

    x = image.contiguous().float()
    if coin():
        x = (x + uniform(-32, 32)).clamp(0, 255)
    contrast_first = coin()
    if contrast_first and coin():
        x = (x * uniform(0.5, 1.5)).clamp(0, 255)
    saturation = uniform(0.5, 1.5) if coin() else None
    hue = int(torch.randint(-18, 19, (), generator=g)) if coin() else None
    if hue is not None:  # one HSV round trip for both
        h, s, v = _rgb_to_hsv(x)
        if saturation is not None:
            s = (s * saturation).clamp(0, 1)
        x = _hsv_to_rgb(torch.remainder(h + hue / 180, 1.0), s, v)
    elif saturation is not None:
        x = _scale_saturation(x, saturation)
    if not contrast_first and coin():
        x = (x * uniform(0.5, 1.5)).clamp(0, 255)
    return x.round().to(torch.uint8)


def _scale_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    """HSV saturation × factor (clipped to 1) without leaving RGB: hue and value stay, so every channel
    moves away from the maximum by the factor by which S grows."""
    v, m = x.amax(0), x.amin(0)
    gain = torch.minimum(torch.full_like(v, factor), v / (v - m).clamp_min(1e-6))
    return v - (v - x) * gain


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB in 0..255 → (hue in [0, 1), saturation in [0, 1], value in 0..255)."""
    r, g, b = x
    v, m = x.amax(0), x.amin(0)
    delta = v - m
    d = delta.clamp_min(1e-6)
    h = torch.where(v == r, (g - b) / d, torch.where(v == g, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, torch.remainder(h / 6, 1.0), 0.0)
    return h, delta / v.clamp_min(1e-6), v


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0])[:, None, None] + h * 6, 6)
    return v - v * s * torch.minimum(k, 4 - k).clamp(0, 1)


class AugmentedView(Dataset):
    """A dataset indexed by ``(index, sample_seed)`` that returns augmented samples."""

    def __init__(
        self, base: Dataset, cfg: AugmentConfig, crop_size: list[int] | None, ignore_index: int
    ) -> None:
        self.base, self.cfg, self.crop_size, self.ignore_index = base, cfg, crop_size, ignore_index

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        image, label = self.base[index]
        return augment(image, label, self.cfg, self.crop_size, self.ignore_index, seed)


class TrainBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches ``[(index, sample_seed), ...]`` for steps ``start_step .. num_steps - 1``.

    The stream is a concatenation of seeded random permutations of the dataset (one per epoch);
    batches never straddle a reshuffle boundary differently on resume.
    """

    def __init__(self, n: int, batch_size: int, seed: int, num_steps: int, start_step: int = 0) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.num_steps, self.start_step = num_steps, start_step

    def __len__(self) -> int:
        return max(self.num_steps - self.start_step, 0)

    def _permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, -1 - epoch))
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        position = self.start_step * self.batch_size
        epoch, perm = -1, []
        for _ in range(len(self)):
            batch = []
            for _ in range(self.batch_size):
                if position // self.n != epoch:
                    epoch = position // self.n
                    perm = self._permutation(epoch)
                batch.append((perm[position % self.n], derive_seed(self.seed, position)))
                position += 1
            yield batch


def _worker_init(worker_id: int) -> None:
    # Augmentation draws from per-sample generators; keep every worker to one thread so that N
    # workers do not oversubscribe the cores the training step needs.
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    batch_sampler: Sampler | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader with the project's settings: workers persistent and prefetching when used.

    It gets its own generator: a DataLoader without one draws its base seed from the global torch
    RNG each time it is iterated, which would shift the dropout masks of a resumed run.
    """
    kwargs: dict = {
        "num_workers": num_workers,
        "pin_memory": pin_memory,
        "generator": torch.Generator().manual_seed(0),
    }
    if num_workers > 0:
        kwargs |= {"persistent_workers": True, "prefetch_factor": 4, "worker_init_fn": _worker_init}
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **kwargs)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **kwargs)
