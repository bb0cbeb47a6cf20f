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
    """Random scale → pad/crop → flip → jitter, image and label kept aligned.

    Args:
        image: uint8 ``[3, H, W]``.
        label: int64 ``[H, W]``.
        crop_size: ``[h, w]``; the image is padded (label with ``ignore_index``) when smaller.
        seed: the sample's seed; the same seed gives the same augmentation.
    """
    g = torch.Generator().manual_seed(seed)
    lo, hi = cfg.scale_range
    if (lo, hi) != (1.0, 1.0):
        s = lo + (hi - lo) * torch.rand((), generator=g).item()
        h, w = label.shape
        size = [max(1, round(h * s)), max(1, round(w * s))]
        image = TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        label = TF.resize(label[None], size, interpolation=TF.InterpolationMode.NEAREST)[0]
    if crop_size is not None:
        ch, cw = crop_size
        h, w = label.shape
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph), value=0)
            label = F.pad(label, (0, pw, 0, ph), value=ignore_index)
            h, w = label.shape
        top = int(torch.randint(h - ch + 1, (), generator=g))
        left = int(torch.randint(w - cw + 1, (), generator=g))
        image = image[:, top : top + ch, left : left + cw]
        label = label[top : top + ch, left : left + cw]
    if cfg.hflip and torch.rand((), generator=g).item() < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    if cfg.jitter > 0:
        b, c, s = (1 + cfg.jitter * (2 * torch.rand(3, generator=g) - 1)).tolist()
        image = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, b), c), s)
    return image.contiguous(), label.contiguous()


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
