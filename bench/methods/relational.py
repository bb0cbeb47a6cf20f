"""Row-chunked KL between similarity distributions, with the gradient fused into the forward pass.

The CIRKD terms compare, row by row, ``σ(z^t)`` with ``σ(z^s)`` where ``z = X Yᵀ / τ`` is a similarity
matrix of shape ``[rows, K]`` (pixel affinities, anchor × queue logits). Built whole, such a matrix and
the four or five copies autograd keeps of it (logits, log-softmax of both, the KL terms, its gradient)
dominate the memory of a training step and are written and read from main memory several times.

Here the matrix is built a block of rows at a time and never kept: for each block the KL and its
gradient with respect to the student logits, ``σ(z^s) − σ(z^t)``, are computed together in three
reused buffers (two exponentials per entry, :func:`kl_and_grad`) and the gradient is pushed
straight into the student features with matrix products (for the pair term through the L2
normalisation as well, so autograd keeps none of its intermediates). Peak memory is three blocks of
:data:`CHUNK_ELEMENTS` floats (more for the bank term) beside the node vectors; the arithmetic is that
of the plain formulation (values agree to float32 rounding), and a backward pass only scales the
stored gradient. Double backward is not supported.
"""

from __future__ import annotations

import torch

# Floats per block matrix of the pair affinities (2 MB in fp32): three such blocks are alive at once,
# allocated once per call and reused for every block of rows. The anchor × bank term, whose products
# have a short inner dimension and which keeps queues of hundreds of MB anyway, takes blocks
# BANK_CHUNK_SCALE times larger: its matrix products run markedly faster with ≈800 rows than ≈100.
CHUNK_ELEMENTS = 2**19
BANK_CHUNK_SCALE = 8
MIN_ROWS = 32
NORM_EPS = 1e-12  # F.normalize's default ε
BLOCKS_ALIVE = 3  # student logits (then the gradient), teacher logits, teacher probabilities


def rows_per_chunk(columns: int, scale: int = 1) -> int:
    return max(MIN_ROWS, scale * CHUNK_ELEMENTS // max(columns, 1))


def chunk_memory_mb(columns: int, scale: int = 1, rows: int | None = None) -> float:
    """Peak MB of the per-block buffers for similarity rows of ``columns`` entries (at most ``rows``
    rows in all)."""
    per_block = rows_per_chunk(columns, scale) if rows is None else min(rows_per_chunk(columns, scale), rows)
    return BLOCKS_ALIVE * 4 * per_block * columns / 2**20


def kl_and_grad(z_s: torch.Tensor, z_t: torch.Tensor, p_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Σ KL(σ(z_t) ‖ σ(z_s))`` over all rows (softmax over the last dim) and ``σ(z_s) − σ(z_t)``.

    Per row, with logits shifted by their maximum (``z'``) and ``S = Σ exp z'``:
    ``KL = Σ_k σ(z_t)_k (z'_t − z'_s)_k + log S_s − log S_t`` (``Σ_k σ(z_t)_k = 1``): two
    exponentials per entry, no log-softmax copies. ``z_s`` and ``z_t`` are overwritten (the gradient
    is returned in ``z_s``'s storage); ``p_t``, of their shape, is scratch space. The sum is float64.
    """
    z_t.sub_(z_t.amax(-1, keepdim=True))
    z_s.sub_(z_s.amax(-1, keepdim=True))
    torch.exp(z_t, out=p_t)
    sum_t = p_t.sum(-1, keepdim=True)
    p_t.div_(sum_t)
    cross = torch.dot(p_t.reshape(-1), z_t.sub_(z_s).reshape(-1)).double()
    p_s = z_s.exp_()
    sum_s = p_s.sum(-1, keepdim=True)
    p_s.div_(sum_s)
    kl = cross + (sum_s.double().log() - sum_t.double().log()).sum()
    return kl, p_s.sub_(p_t)


class _FusedGradient(torch.autograd.Function):
    """Backward of a loss whose forward already computed its gradient for the first input."""

    @staticmethod
    def finish(ctx, grad: torch.Tensor | None, total: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(grad if grad is not None else s.new_zeros(()))
        return total.to(s.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * grad_out, *(None,) * (len(ctx.needs_input_grad) - 1)


def unit(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``x / max(‖x‖, ε)`` along dim 1 (:func:`torch.nn.functional.normalize`'s values); ``inplace``
    overwrites ``x`` (a copy of the caller's, without gradient)."""
    denom = x.norm(dim=1, keepdim=True).clamp_min_(NORM_EPS)
    return x.div_(denom) if inplace else x / denom


def unit_backward(grad: torch.Tensor, norm: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """The gradient w.r.t. ``x`` of a loss with gradient ``grad`` w.r.t. ``n = unit(x)``, in place of
    ``grad``, ``norm = ‖x‖`` along dim 1: ``(grad − n·⟨n, grad⟩) / ‖x‖``, or ``grad / ε`` where
    ``‖x‖ ≤ ε`` (the clamp)."""
    along = (n * grad).sum(1, keepdim=True).mul_(norm > NORM_EPS)
    return grad.sub_(n * along).div_(norm.clamp_min_(NORM_EPS))


class _PairAffinityKL(_FusedGradient):
    """``Σ_(i,j) Σ_r KL(σ(T_iᵀ T_j/τ)[r] ‖ σ(S_iᵀ S_j/τ)[r])`` over the ordered pairs of each group.

    ``S`` = the student input L2-normalised along D here (the gradient goes through the
    normalisation too, so autograd keeps none of its intermediates), ``T`` unit teacher nodes; both
    in the ``[B, D, M]`` layout of a flattened feature map (no transposed copy). A block of rows of
    image i against every image j of its group is ``[g, rows, M]`` (softmax over M).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, t: torch.Tensor, tau: float, group: int, scratch: bool) -> torch.Tensor:
        norm = x.detach().norm(dim=1, keepdim=True)
        s = unit(x.detach(), inplace=scratch)
        b, m = s.shape[0], s.shape[2]
        need_grad = ctx.needs_input_grad[0]
        grad = torch.zeros_like(s) if need_grad else None
        total = torch.zeros((), dtype=torch.float64, device=s.device)
        rows = min(rows_per_chunk(group * m), m)
        blocks = s.new_empty(BLOCKS_ALIVE, group * rows * m)  # reused for every block of rows
        for k0 in range(0, b, group):
            s_grp, t_grp = s[k0 : k0 + group], t[k0 : k0 + group]
            for i in range(k0, k0 + group):
                for r0 in range(0, m, rows):
                    # The row block pre-divided by τ: a small scaling instead of one per logit block.
                    s_rows = s[i, :, r0 : r0 + rows].T / tau
                    n = s_rows.shape[0]
                    z_s, z_t, p_t = (buf[: group * n * m].view(group, n, m) for buf in blocks)
                    torch.matmul(s_rows, s_grp, out=z_s)
                    torch.matmul(t[i, :, r0 : r0 + rows].T / tau, t_grp, out=z_t)
                    kl, g = kl_and_grad(z_s, z_t, p_t)
                    total += kl
                    if grad is not None:
                        for j in range(group):  # rows (image i) and columns (image k0 + j) of the pair
                            grad[i, :, r0 : r0 + rows].addmm_(s_grp[j], g[j].T, alpha=1 / tau)
                            grad[k0 + j].addmm_(s_rows.T, g[j])
        del blocks
        if grad is not None:
            grad = unit_backward(grad, norm, s)
        return _FusedGradient.finish(ctx, grad, total, x)


def pair_affinity_kl_sum(
    s: torch.Tensor, t: torch.Tensor, tau: float, group: int, scratch: bool = False
) -> torch.Tensor:
    """Summed row KLs of cross-image affinities within consecutive groups of ``group`` images.

    ``s``: ``[B, D, M]`` student node vectors, L2-normalised along D here (differentiable, the
    normalisation included); ``t``: ``[B, D_t, M]`` unit teacher node vectors (:func:`unit`), a
    constant. ``B`` a multiple of ``group``. ``scratch``: ``s`` is the caller's own copy (a pooled
    map, which autograd does not keep) and is normalised in place.
    """
    return _PairAffinityKL.apply(s, t.detach(), tau, group, scratch)


class _BankKL(_FusedGradient):
    """``Σ_a KL(σ(t_a Xᵀ/s) ‖ σ(s_a Xᵀ/s))`` over anchors, against one constant bank ``X``."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, t: torch.Tensor, bank: torch.Tensor, scale: float) -> torch.Tensor:
        need_grad = ctx.needs_input_grad[0]
        grad = torch.empty_like(s) if need_grad else None
        total = torch.zeros((), dtype=torch.float64, device=s.device)
        rows = rows_per_chunk(bank.shape[0], BANK_CHUNK_SCALE)
        bank = bank / scale  # pre-divided: one small scaling instead of one per logit block
        blocks = s.new_empty(BLOCKS_ALIVE, min(rows, s.shape[0]), bank.shape[0])  # reused for every block
        for r0 in range(0, s.shape[0], rows):
            z_s, z_t, p_t = blocks[:, : min(rows, s.shape[0] - r0)]
            torch.mm(s[r0 : r0 + rows], bank.T, out=z_s)
            torch.mm(t[r0 : r0 + rows], bank.T, out=z_t)
            kl, g = kl_and_grad(z_s, z_t, p_t)
            total += kl
            if grad is not None:
                torch.mm(g, bank, out=grad[r0 : r0 + rows])
        return _FusedGradient.finish(ctx, grad, total, s)


def bank_kl_sum(s: torch.Tensor, t: torch.Tensor, bank: torch.Tensor, scale: float) -> torch.Tensor:
    """Summed KLs of anchor-to-bank similarity distributions, ``[n, D]`` anchors, ``[K, D]`` bank.

    Differentiable with respect to the student anchors ``s``; ``t`` and ``bank`` are constants.
    """
    return _BankKL.apply(s, t.detach(), bank.detach(), scale)
