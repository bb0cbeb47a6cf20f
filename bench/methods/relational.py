"""Row-chunked KL between similarity distributions, with the gradient fused into the forward pass.

The CIRKD terms compare, row by row, ``σ(z^t)`` with ``σ(z^s)`` where ``z = X Yᵀ / τ`` is a similarity
matrix of shape ``[rows, K]`` (pixel affinities, anchor × queue logits). Built whole, such a matrix and
the four or five copies autograd keeps of it (logits, log-softmax of both, the KL terms, its gradient)
dominate the memory of a training step and are written and read from main memory several times.

Here the matrix is built a block of rows at a time and never kept: for each block the KL and its
gradient with respect to the student logits, ``σ(z^s) − σ(z^t)``, are computed together and the
gradient is pushed straight into the student features with two matrix products. Peak memory is a
few blocks of :data:`CHUNK_ELEMENTS` floats; the arithmetic is that of the plain formulation
(values agree to float32 rounding), and a backward pass only scales the stored gradient.
Double backward is not supported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Floats per block matrix (4 MB in fp32). Five such blocks are alive at once; large enough for the
# matrix products to run at full speed, small enough to stay in the allocator's reused heap.
CHUNK_ELEMENTS = 2**20
MIN_ROWS = 32
BLOCKS_ALIVE = 5  # student and teacher logits, both log-softmaxes, the teacher probabilities


def rows_per_chunk(columns: int) -> int:
    return max(MIN_ROWS, CHUNK_ELEMENTS // max(columns, 1))


def chunk_memory_mb(columns: int) -> float:
    """Peak MB of the per-block buffers for similarity rows of ``columns`` entries."""
    return BLOCKS_ALIVE * 4 * rows_per_chunk(columns) * columns / 2**20


def kl_and_grad(z_s: torch.Tensor, z_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Σ KL(σ(z_t) ‖ σ(z_s))`` over all rows (softmax over the last dim) and ``σ(z_s) − σ(z_t)``.

    ``z_s`` and ``z_t`` are consumed (used as scratch space). The sum is returned in float64.
    """
    log_s = F.log_softmax(z_s, dim=-1)
    del z_s
    log_t = F.log_softmax(z_t, dim=-1)
    del z_t
    p_t = log_t.exp()
    kl = torch.dot(p_t.reshape(-1), log_t.sub_(log_s).reshape(-1)).double()
    return kl, log_s.exp_().sub_(p_t)


class _FusedGradient(torch.autograd.Function):
    """Backward of a loss whose forward already computed its gradient for the first input."""

    @staticmethod
    def finish(ctx, grad: torch.Tensor | None, total: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad if grad is not None else s.new_zeros(()))
        return total.to(s.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * grad_out, None, None, None


class _PairAffinityKL(_FusedGradient):
    """``Σ_(i,j) Σ_r KL(σ(T_i T_jᵀ/τ)[r] ‖ σ(S_i S_jᵀ/τ)[r])`` over the ordered pairs of each group."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, t: torch.Tensor, tau: float, group: int) -> torch.Tensor:
        b, m, d = s.shape
        need_grad = ctx.needs_input_grad[0]
        grad = torch.zeros_like(s) if need_grad else None
        total = torch.zeros((), dtype=torch.float64, device=s.device)
        rows = rows_per_chunk(group * m)
        for k0 in range(0, b, group):
            s_cols = s[k0 : k0 + group].reshape(-1, d)
            t_cols = t[k0 : k0 + group].reshape(-1, t.shape[2])
            grad_cols = grad[k0 : k0 + group].view(-1, d) if grad is not None else None
            for i in range(k0, k0 + group):
                for r0 in range(0, m, rows):
                    # The row block pre-divided by τ: a small scaling instead of one per logit block.
                    s_rows = s[i, r0 : r0 + rows] / tau
                    z_s = (s_rows @ s_cols.T).view(-1, group, m)
                    z_t = (t[i, r0 : r0 + rows] / tau @ t_cols.T).view(-1, group, m)
                    kl, g = kl_and_grad(z_s, z_t)
                    total += kl
                    if grad_cols is not None:
                        g = g.view(-1, group * m)
                        grad[i, r0 : r0 + rows].addmm_(g, s_cols, alpha=1 / tau)
                        grad_cols.addmm_(g.T, s_rows)
        return _FusedGradient.finish(ctx, grad, total, s)


def pair_affinity_kl_sum(s: torch.Tensor, t: torch.Tensor, tau: float, group: int) -> torch.Tensor:
    """Summed row KLs of cross-image affinities within consecutive groups of ``group`` images.

    ``s``, ``t``: ``[B, M, D]`` unit node vectors (student, teacher; widths may differ), ``B`` a
    multiple of ``group``. Differentiable with respect to ``s``; ``t`` is treated as a constant.
    """
    return _PairAffinityKL.apply(s, t.detach(), tau, group)


class _BankKL(_FusedGradient):
    """``Σ_a KL(σ(t_a Xᵀ/s) ‖ σ(s_a Xᵀ/s))`` over anchors, against one constant bank ``X``."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, t: torch.Tensor, bank: torch.Tensor, scale: float) -> torch.Tensor:
        need_grad = ctx.needs_input_grad[0]
        grad = torch.empty_like(s) if need_grad else None
        total = torch.zeros((), dtype=torch.float64, device=s.device)
        rows = rows_per_chunk(bank.shape[0])
        bank = bank / scale  # pre-divided: one small scaling instead of one per logit block
        for r0 in range(0, s.shape[0], rows):
            z_s = s[r0 : r0 + rows] @ bank.T
            z_t = t[r0 : r0 + rows] @ bank.T
            kl, g = kl_and_grad(z_s, z_t)
            total += kl
            if grad is not None:
                torch.mm(g, bank, out=grad[r0 : r0 + rows])
        return _FusedGradient.finish(ctx, grad, total, s)


def bank_kl_sum(s: torch.Tensor, t: torch.Tensor, bank: torch.Tensor, scale: float) -> torch.Tensor:
    """Summed KLs of anchor-to-bank similarity distributions, ``[n, D]`` anchors, ``[K, D]`` bank.

    Differentiable with respect to the student anchors ``s``; ``t`` and ``bank`` are constants.
    """
    return _BankKL.apply(s, t.detach(), bank.detach(), scale)
