"""CIRKD memory-based pixel and region distillation (Yang et al., CVPR 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from bench.config.schema import TermConfig
from bench.errors import ConfigError
from bench.methods import TERMS
from bench.methods.base import LossTerm, TermContext, aligned, fp32, labels_to
from bench.methods.relational import BANK_CHUNK_SCALE, bank_kl_sum, chunk_memory_mb
from bench.models.taps import Taps

# Float32 copies alive at the peak: of the [B, D_t, h, w] maps, the projection head's activations
# autograd keeps (BN input, ReLU output, last conv output, unit embeddings) and the teacher's unit
# embeddings; of the [anchors, D_t] rows, student and teacher anchors and their fused gradient; of a
# bank, its gathered slots and their scaled copy.
_MAP_COPIES = 5
_ANCHOR_COPIES = 3
_BANK_COPIES = 2


@dataclass
class CIRKDMemoryConfig(TermConfig):
    pixel_weight: float = 0.1  # λ of the pixel-memory term (--lambda-memory-pixel)
    region_weight: float = 0.1  # λ of the region-memory term (--lambda-memory-region)
    contrast_temperature: float = 0.1  # τ dividing the cosine similarities (--contrast-temperature)
    kd_temperature: float = 1.0  # T_c of the KL between similarity distributions (--contrast-kd-temperature)
    pixel_memory_size: int = 20000  # teacher pixel embeddings kept per class
    region_memory_size: int = 2000  # teacher region (class-mean) embeddings kept per class
    # Queue entries contrasted per step, over all classes: ⌊size / C⌋ + 1 slots of each class (the same
    # slot indices for every class), as train_cirkd.py passes them.
    pixel_contrast_size: int = 4096
    region_contrast_size: int = 1024
    pixels_per_class: int = 16  # random teacher pixels enqueued per image and class present
    # Anchors (valid pixels) used per step; 0 = all (official). A random subset bounds memory.
    max_anchors: int = 0


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over processes when a process group is initialised; else ``x`` itself."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def enqueue(queue: torch.Tensor, ptr: torch.Tensor, values: torch.Tensor, classes: torch.Tensor) -> None:
    """Push the rows ``values[n, D]`` into per-class FIFO ring buffers ``queue[C, S, D]``, in place.

    Rows of one class go in their order, starting at ``ptr[class]``, which advances (mod S). When a
    step brings more than S rows for a class only the newest S are written (no index collision, so the
    update is deterministic). Vectorised: one sort and one scatter for all classes.
    """
    if classes.numel() == 0:
        return
    size = queue.shape[1]
    classes, order = torch.sort(classes, stable=True)
    values = values[order]
    counts = torch.bincount(classes, minlength=queue.shape[0])
    starts = counts.cumsum(0) - counts
    rank = torch.arange(classes.numel(), device=classes.device) - starts[classes]
    keep = rank >= counts[classes] - size
    slots = (ptr[classes] + rank) % size
    queue[classes[keep], slots[keep]] = values[keep].to(queue.dtype)
    ptr.copy_((ptr + counts) % size)


@torch.no_grad()
def class_entries(
    emb: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore_index: int, per_class: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What one step enqueues, from unit embeddings ``[B, D, h, w]`` and labels ``[B, h, w]``.

    Returns ``(regions, region_classes, pixels, pixel_classes)``: for every (image, class) present, the
    L2-normalised mean embedding, and ``min(n, per_class)`` of its pixel embeddings drawn at random
    (global torch RNG); rows ordered by image, then class. Ignore pixels are left out.
    """
    b, d = emb.shape[:2]
    x = emb.permute(0, 2, 3, 1).reshape(-1, d)
    lab = labels.reshape(-1)
    image = torch.arange(b, device=lab.device).repeat_interleave(lab.numel() // b)
    valid = (lab != ignore_index) & (lab >= 0) & (lab < num_classes)
    x, lab, group = x[valid], lab[valid], image[valid] * num_classes + lab[valid]
    counts = torch.bincount(group, minlength=b * num_classes)
    sums = x.new_zeros(b * num_classes, d).index_add_(0, group, x)
    present = counts.nonzero().squeeze(1)  # (image, class) groups in image-major order
    regions = F.normalize(sums[present] / counts[present, None], dim=1)
    # Random order inside each group: shuffle, then a stable sort by group keeps the shuffle.
    perm = torch.randperm(group.numel(), device=group.device)
    order = perm[torch.sort(group[perm], stable=True).indices]
    rank = torch.arange(order.numel(), device=order.device) - (counts.cumsum(0) - counts)[group[order]]
    chosen = order[rank < per_class]
    return regions, present % num_classes, x[chosen], lab[chosen]


def memory_kd(
    student_anchors: torch.Tensor,
    teacher_anchors: torch.Tensor,
    bank: torch.Tensor,
    contrast_temperature: float = 0.1,
    kd_temperature: float = 1.0,
) -> torch.Tensor:
    """``T_c² · (1/n) Σ_a KL(σ(⟨t_a, bank⟩/(τ·T_c)) ‖ σ(⟨s_a, bank⟩/(τ·T_c)))`` over n anchors.

    Anchors ``[n, D]`` and bank ``[K, D]`` are unit vectors; student and teacher anchors are compared
    against the same teacher bank entries. KL summed over K, averaged over anchors (``batchmean``).
    The bank is a constant (teacher queue entries). Computed a block of anchors at a time with the
    gradient fused in (:mod:`bench.methods.relational`): the ``n × K`` logits are never kept.
    """
    scale = contrast_temperature * kd_temperature
    total = bank_kl_sum(student_anchors.float(), teacher_anchors.float(), bank.float(), scale)
    return total / student_anchors.shape[0] * kd_temperature**2


@TERMS.register("cirkd_memory")
class CIRKDMemory(LossTerm):
    """CIRKD memory terms: pixel-to-pixel and pixel-to-region similarity distributions against queues.

    Formula: student features → projection head (1×1 conv D_s→D_t, BN, ReLU, 1×1 conv) and teacher
    features, L2-normalised per position; anchors a = every non-ignore position of the batch (labels
    nearest-resized). Per step, ``⌊pixel_contrast_size/C⌋+1`` slots of every class's pixel queue form
    the bank ``X_p`` (``⌊region_contrast_size/C⌋+1`` of the region queue form ``X_r``) and
    ``L = λ_p · T_c²·mean_a KL(σ(⟨t_a,X_p⟩/τT_c) ‖ σ(⟨s_a,X_p⟩/τT_c)) + λ_r · (same with X_r)``.
    Queues: per-class FIFO ring buffers of teacher embeddings (``pixel_memory_size`` and
    ``region_memory_size`` per class, random unit vectors at start, registered buffers so they are
    checkpointed and resume exactly); each training step first enqueues, for every image and class
    present, the normalised class-mean teacher embedding (region queue) and ``pixels_per_class``
    random teacher pixels (pixel queue), then computes the loss — the official order. Enqueueing
    happens in ``forward`` while the module is in training mode (``.eval()`` makes it a pure function).
    With an initialised process group the enqueued embeddings are all-gathered first (official);
    without one (single device) nothing is gathered.
    Paper: Yang et al., "Cross-Image Relational Knowledge Distillation for Semantic Segmentation",
    CVPR 2022 (winycg/CIRKD ``losses/cirkd_memory.py``, ``train_cirkd.py``). Reduction: official
    (``batchmean`` over anchors, × T_c²) — no conversion: τ = 0.1, T_c = 1, λ_p = λ_r = 0.1 (VOC
    scripts: 0.01), queues 20,000 / 2,000 per class, contrast 4,096 / 1,024, 16 pixels per class and
    image; the term weight multiplies both. Deviation: the official pixel queue, when a push would
    pass its end, overwrites the *last* K slots and restarts at 0; here it is a plain ring buffer.
    Ignore pixels: neither anchors nor enqueued. No valid anchor: 0 (with a graph). Student features
    of another size are bilinearly resized to the teacher's; the head is built from
    ``ctx.student_channels['feat']`` / ``ctx.teacher_channels['feat']`` and trained with the student.
    Batch composition: a mean over anchors, so the loss given the queues does not depend on how the
    batch is split; the queue contents do (official: all-gathered over GPUs). Memory: the queues, the
    anchors and a few blocks of anchor × slot logits (:mod:`bench.methods.relational`), see
    :meth:`estimate_memory_mb`; ``max_anchors`` subsamples anchors.
    """

    Config = CIRKDMemoryConfig
    requires = frozenset({"feat"})
    identical_value = None  # the student passes a projection head first
    batch_decomposable = False  # training mode enqueues the batch; anchors are a mean over the batch

    def __init__(self, cfg: CIRKDMemoryConfig, ctx: TermContext) -> None:
        super().__init__(cfg, ctx)
        d_s, d_t = ctx.student_channels.get("feat"), ctx.teacher_channels.get("feat")
        if not d_s or not d_t or ctx.num_classes < 1:
            raise ConfigError(
                "cirkd_memory needs ctx.num_classes and the feat widths in ctx.student_channels / "
                "ctx.teacher_channels (TermContext(num_classes=..., student_channels={'feat': D_s}, "
                "teacher_channels={'feat': D_t}))"
            )
        sizes = (cfg.pixel_memory_size, cfg.region_memory_size, cfg.pixel_contrast_size)
        if min(*sizes, cfg.region_contrast_size, cfg.pixels_per_class) < 1 or cfg.max_anchors < 0:
            raise ConfigError("cirkd_memory: sizes must be ≥ 1 and max_anchors ≥ 0")
        self.head = nn.Sequential(
            nn.Conv2d(d_s, d_t, 1, bias=False),
            nn.BatchNorm2d(d_t),
            nn.ReLU(inplace=True),
            nn.Conv2d(d_t, d_t, 1, bias=False),
        )
        c = ctx.num_classes
        self.register_buffer("pixel_queue", F.normalize(torch.randn(c, cfg.pixel_memory_size, d_t), dim=2))
        self.register_buffer("pixel_ptr", torch.zeros(c, dtype=torch.long))
        self.register_buffer("region_queue", F.normalize(torch.randn(c, cfg.region_memory_size, d_t), dim=2))
        self.register_buffer("region_ptr", torch.zeros(c, dtype=torch.long))

    def _slots(self, contrast_size: int, memory_size: int) -> int:
        return min(contrast_size // self.ctx.num_classes + 1, memory_size)

    def _bank(self, queue: torch.Tensor, contrast_size: int) -> torch.Tensor:
        """``⌊contrast_size/C⌋+1`` random slots, the same for every class, as ``[C·k, D]``."""
        k = self._slots(contrast_size, queue.shape[1])
        index = torch.randperm(queue.shape[1], device=queue.device)[:k]
        return queue[:, index].reshape(-1, queue.shape[2])

    @torch.no_grad()
    def update_queues(self, teacher_emb: torch.Tensor, labels: torch.Tensor) -> None:
        """Enqueue one batch's teacher embeddings (unit, ``[B, D, h, w]``) by their labels."""
        ctx = self.ctx
        entries = class_entries(
            _gather(teacher_emb),
            _gather(labels),
            ctx.num_classes,
            ctx.ignore_index,
            self.cfg.pixels_per_class,
        )
        regions, region_cls, pixels, pixel_cls = entries
        enqueue(self.region_queue, self.region_ptr, regions, region_cls)
        enqueue(self.pixel_queue, self.pixel_ptr, pixels, pixel_cls)

    def forward(
        self, student: Taps, teacher: Taps | None, labels: torch.Tensor | None = None, step: int = 0
    ) -> torch.Tensor:
        if labels is None:
            raise ValueError("cirkd_memory needs labels (anchors and queues are per class)")
        cfg = self.cfg
        with fp32(student):
            s, t = aligned(student.feat, teacher.feat)
            s_emb = F.normalize(self.head(s), dim=1)
            t_emb = F.normalize(t.detach(), dim=1)
            lab = labels_to(labels, t.shape[-2:])
            if self.training:
                self.update_queues(t_emb, lab)
            valid = (lab != self.ctx.ignore_index).reshape(-1)
            s_a = s_emb.permute(0, 2, 3, 1).reshape(-1, s_emb.shape[1])[valid]
            t_a = t_emb.permute(0, 2, 3, 1).reshape(-1, t_emb.shape[1])[valid]
            if s_a.shape[0] == 0:
                return 0.0 * s_emb.sum()
            if cfg.max_anchors and s_a.shape[0] > cfg.max_anchors:
                keep = torch.randperm(s_a.shape[0], device=s_a.device)[: cfg.max_anchors]
                s_a, t_a = s_a[keep], t_a[keep]
            tau, tc = cfg.contrast_temperature, cfg.kd_temperature
            pixel = memory_kd(s_a, t_a, self._bank(self.pixel_queue, cfg.pixel_contrast_size), tau, tc)
            region = memory_kd(s_a, t_a, self._bank(self.region_queue, cfg.region_contrast_size), tau, tc)
            return cfg.pixel_weight * pixel + cfg.region_weight * region

    def estimate_memory_mb(self) -> float | None:
        c, d = self.ctx.num_classes, self.pixel_queue.shape[2]
        queues = 4 * (self.pixel_queue.numel() + self.region_queue.numel()) / 2**20
        if self.ctx.feature_size is None:
            return queues
        positions = self.ctx.batch_size * self.ctx.feature_size[0] * self.ctx.feature_size[1]
        anchors = min(positions, self.cfg.max_anchors or positions)
        widest = c * max(
            self._slots(self.cfg.pixel_contrast_size, self.cfg.pixel_memory_size),
            self._slots(self.cfg.region_contrast_size, self.cfg.region_memory_size),
        )
        rows = _MAP_COPIES * positions + _ANCHOR_COPIES * anchors + _BANK_COPIES * widest
        blocks = chunk_memory_mb(widest, BANK_CHUNK_SCALE, rows=anchors)  # one bank at a time
        return queues + 4 * rows * d / 2**20 + blocks
