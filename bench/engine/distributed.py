"""One training run on several processes: ``torchrun --nproc_per_node=N -m bench.train ...``.

torchrun sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; the trainer then

- joins the process group (NCCL on CUDA, one GPU per process = ``LOCAL_RANK``; gloo on CPU),
- converts BatchNorm to synchronised BatchNorm (torch's ``SyncBatchNorm`` on GPUs; on CPU, where
  torch's raises, :class:`GlooSyncBatchNorm`) and wraps the student in
  ``DistributedDataParallel``,
- gives each rank a contiguous slice of every global batch of the seeded sampler, so the N ranks
  together see exactly the batches of a one-process run with the same ``train.batch_size``
  (the global batch; it must be divisible by N),
- averages the gradients of the loss terms' own parameters (adapters) across ranks, like DDP does
  for the student's, and the logged losses,
- writes checkpoints, the model and the result row from rank 0 only; every rank evaluates (the
  weights and BatchNorm statistics are identical), so validation needs no gathering.

With the same global batch the run matches a one-process run up to float reordering, except where
a computation depends on the local batch: the task loss averages over each rank's labelled pixels
before the ranks average (equal when every rank has as many labelled pixels), dropout masks come
from each rank's RNG, and terms that relate samples across the batch (CIRKD's pairwise terms, their
memory banks) see the local batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from bench.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: list[Any]) -> list[Any]:
        """This rank's contiguous slice of a global batch."""
        if not self.enabled:
            return batch
        per = len(batch) // self.world
        return batch[self.rank * per : (self.rank + 1) * per]


class ShardedBatchSampler(Sampler[list[Any]]):
    """A batch sampler whose global batches are cut to this rank's slice."""

    def __init__(self, sampler: Sampler[list[Any]], ctx: DistContext) -> None:
        self.sampler, self.ctx = sampler, ctx

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[Any]]:
        for batch in self.sampler:
            yield self.ctx.shard(batch)


def context() -> DistContext:
    """The process's place in a torchrun launch (one process without one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(ctx: DistContext, device: torch.device, batch_size: int) -> torch.device:
    """Join the process group; returns this rank's device (``cuda:LOCAL_RANK`` on GPUs)."""
    if not ctx.enabled:
        return device
    if batch_size % ctx.world:
        raise ConfigError(
            f"train.batch_size={batch_size} (the global batch) must be divisible by the {ctx.world} "
            "processes of the run"
        )
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``model`` with synchronised BatchNorm (in place) inside DistributedDataParallel."""
    if not ctx.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # children replaced in place
    else:
        _convert(model, GlooSyncBatchNorm)
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,  # unused encoder stages (smp's PSPNet) and optional heads
    )


def _convert(module: nn.Module, cls: type[nn.Module]) -> None:
    """Replace every BatchNorm child with ``cls`` sharing its parameters and buffers."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, cls):
            new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.weight, new.bias = child.weight, child.bias
            new.running_mean, new.running_var = child.running_mean, child.running_var
            new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            _convert(child, cls)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its gradient is the sum over ranks of the output's gradient."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks, for CPU processes (gloo).

    torch's ``SyncBatchNorm`` runs on GPUs only. In training the per-channel sums of x and x² and the
    element counts are all-reduced (differentiably), giving the global mean and biased variance the
    output is normalised with; the running statistics get the unbiased variance, as BatchNorm does.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        count = torch.tensor([x.numel() / x.size(1)], dtype=x.dtype, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        c = x.size(1)
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_((var * n / (n - 1)).detach(), m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def average_gradients(params: list[nn.Parameter], ctx: DistContext) -> None:
    """Average the gradients of parameters DDP does not own (the loss terms' adapters)."""
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world


def mean_across_ranks(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if not ctx.enabled:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / ctx.world


def teardown(ctx: DistContext) -> None:
    """Leave the process group, without waiting for the other ranks (one of them may have failed)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
