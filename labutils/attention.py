"""Attention without the s×s matrix: online softmax and a tiled ("flash") forward, in plain PyTorch.

Chapter 8 (context parallelism). Naive attention softmax(QKᵀ/√d)·V materialises the score
matrix, s×s per head: 4 GB in fp32 for one head of a 32k-token sequence. Two ideas remove it:

* **Online softmax** (Milakov & Gimelshein 2018): a softmax over a row can be computed block by
  block, keeping only the running maximum m and the running sum l = Σ exp(x − m); when a later
  block raises the maximum, the old sum is rescaled by exp(m_old − m_new).
* **Tiling** (FlashAttention, Dao et al. 2022, Algorithm 1): loop over blocks of queries and
  blocks of keys; each key block yields a *partial* result (m, l, o) for the query block, and
  :func:`merge_partials` combines partial results exactly. Only one block_q × block_k tile of
  scores exists at a time, so the memory is O(s·d + block_q·block_k) instead of O(s²).

The same merge rule is what ring attention (:mod:`labutils.parallel.context.ring`) uses to
combine the contributions of K/V blocks that arrive from other GPUs.

Conventions: tensors are (..., s, d) (batch and heads in front); scores are scaled by 1/√d;
a *partial result* for some set of keys is (m, l, o) with m = max score per query (shape
(..., s_q)), l = Σ exp(score − m) and o = the softmax-weighted average of those keys' values
(already normalised, so a partial result is itself a valid attention output). A query that sees
no key of the set has m = −inf, l = 0, o = 0.

Gradients: the maximum m only keeps exp() in range and cancels out of every result, so it is
detached; autograd through :func:`flash_attention` then gives exactly the reference gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from labutils.validate import integer

# ----------------------------------------------------------------------------------------------
# Reference and online softmax
# ----------------------------------------------------------------------------------------------


def _check_qkv(q: object, k: object, v: object) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2 or not t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor of shape (..., seq, dim), got "
                             f"{tuple(t.shape)} {t.dtype}")
    qs, ks, vs = q.shape, k.shape, v.shape  # type: ignore[union-attr]
    if ks != vs[:-1] + ks[-1:] or qs[-1] != ks[-1]:
        raise ValueError(f"shapes must be q (..., s_q, d), k (..., s_k, d), v (..., s_k, d_v); got "
                         f"{tuple(qs)}, {tuple(ks)}, {tuple(vs)}")


def _check_causal(causal: object) -> bool:
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__} ({causal!r})")
    return causal


def causal_mask(q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    """Boolean (s_q, s_k) mask, True where query position q may see key position k (k ≤ q)."""
    return k_pos[None, :] <= q_pos[:, None]


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    causal: bool = False) -> torch.Tensor:
    """softmax(QKᵀ/√d [+ causal mask])·V, materialising the full s_q × s_k score matrix.

    Positions are 0 … s−1 for both queries and keys (self-attention). The reference every tiled
    and distributed version is tested against.
    """
    _check_qkv(q, k, v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if _check_causal(causal):
        pos_q = torch.arange(q.shape[-2])
        pos_k = torch.arange(k.shape[-2])
        scores = scores.masked_fill(~causal_mask(pos_q, pos_k), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def online_softmax_stats(x: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Running (max, sum of exp(x − max)) over the last dimension, one block at a time.

    Milakov & Gimelshein 2018, Algorithm 3: one pass; when a block raises the maximum from m to
    m', the sum so far is multiplied by exp(m − m'). Returns (m, l) with softmax(x) =
    exp(x − m) / l.
    """
    block = integer("block", block, 1)
    m = torch.full(x.shape[:-1], float("-inf"), dtype=x.dtype)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for start in range(0, x.shape[-1], block):
        xb = x[..., start:start + block]
        m_new = torch.maximum(m, xb.amax(dim=-1))
        l = l * torch.exp(m - m_new) + torch.exp(xb - m_new[..., None]).sum(dim=-1)
        m = m_new
    return m, l


def online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    """Softmax over the last dimension from :func:`online_softmax_stats` (= torch.softmax)."""
    m, l = online_softmax_stats(x, block)
    return torch.exp(x - m[..., None]) / l[..., None]


# ----------------------------------------------------------------------------------------------
# Partial results and the merge rule
# ----------------------------------------------------------------------------------------------


def block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    mask: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Partial result (m, l, o) of queries ``q`` attending to one block of keys/values.

    ``mask`` (s_q, s_k), True = visible, is optional. Queries with no visible key get
    m = −inf, l = 0, o = 0. Materialises only this s_q × s_k tile of scores.
    """
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    m = scores.amax(dim=-1).detach()  # only for range: it cancels out (see module docstring)
    m_safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    p = torch.exp(scores - m_safe[..., None])  # masked entries: exp(-inf) = 0
    l = p.sum(dim=-1)
    o = (p @ v) / torch.where(l == 0, torch.ones_like(l), l)[..., None]
    return m, l, o


def merge_partials(m1: torch.Tensor, l1: torch.Tensor, o1: torch.Tensor,
                   m2: torch.Tensor, l2: torch.Tensor, o2: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Combine the partial results of two disjoint key sets into the result for their union.

    m = max(m1, m2); each side's weight is w_i = l_i·exp(m_i − m) (its sum of exponentials,
    rescaled to the common maximum); l = w1 + w2; o = (w1·o1 + w2·o2) / l. Exact, in any order
    (FlashAttention Algorithm 1, lines 11-12; the same rule merges ring-attention blocks).
    """
    m = torch.maximum(m1, m2)
    m_safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    w1 = l1 * torch.exp(m1 - m_safe)
    w2 = l2 * torch.exp(m2 - m_safe)
    l = w1 + w2
    denom = torch.where(l == 0, torch.ones_like(l), l)
    o = (w1[..., None] * o1 + w2[..., None] * o2) / denom[..., None]
    return m, l, o


def empty_partial(q: torch.Tensor, d_v: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The partial result of an empty key set (m = −inf, l = 0, o = 0) for queries ``q``."""
    shape = q.shape[:-1]
    kw = {"dtype": q.dtype, "device": q.device}
    return (torch.full(shape, float("-inf"), **kw), torch.zeros(shape, **kw),
            torch.zeros(*shape, d_v, **kw))


# ----------------------------------------------------------------------------------------------
# Tiled attention
# ----------------------------------------------------------------------------------------------


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    block_q: int = 64, block_k: int = 64) -> torch.Tensor:
    """Attention computed tile by tile (FlashAttention Algorithm 1, forward), equal to
    :func:`naive_attention` up to rounding.

    For each block of ``block_q`` queries, loop over blocks of ``block_k`` keys, compute the
    partial result of that tile with :func:`block_attention` and fold it in with
    :func:`merge_partials`. With ``causal``, tiles entirely above the diagonal are skipped (no
    work at all). The largest intermediate is one block_q × block_k tile of scores (or the
    (s, d) output, whichever is larger): see :func:`largest_intermediate_bytes`.
    """
    _check_qkv(q, k, v)
    causal = _check_causal(causal)
    block_q = integer("block_q", block_q, 1)
    block_k = integer("block_k", block_k, 1)
    s_q, s_k = q.shape[-2], k.shape[-2]
    outs = []
    for qs in range(0, s_q, block_q):
        qb = q[..., qs:qs + block_q, :]
        q_pos = torch.arange(qs, qs + qb.shape[-2])
        m, l, o = empty_partial(qb, v.shape[-1])
        for ks in range(0, s_k, block_k):
            if causal and ks > q_pos[-1]:
                break  # this tile and all later ones are fully masked
            kb, vb = k[..., ks:ks + block_k, :], v[..., ks:ks + block_k, :]
            mask = None
            if causal and ks + kb.shape[-2] - 1 > qs:  # the tile crosses the diagonal
                mask = causal_mask(q_pos, torch.arange(ks, ks + kb.shape[-2]))
            m, l, o = merge_partials(m, l, o, *block_attention(qb, kb, vb, mask))
        outs.append(o)
    return torch.cat(outs, dim=-2)


# ----------------------------------------------------------------------------------------------
# Memory: formula and measurement
# ----------------------------------------------------------------------------------------------


def score_matrix_bytes(seq_len: int, n_heads: int, micro_batch: int = 1,
                       bytes_per_element: int = 2) -> int:
    """Bytes of the full attention score matrix of one layer: b·a·s²·e (e bytes per element).

    What naive attention materialises (twice, in fact: scores and softmax probabilities).
    """
    s = integer("seq_len", seq_len, 1)
    a = integer("n_heads", n_heads, 1)
    b = integer("micro_batch", micro_batch, 1)
    e = integer("bytes_per_element", bytes_per_element, 1)
    return b * a * s * s * e


def largest_intermediate_bytes(seq_len: int, head_dim: int, batch_heads: int = 1,
                               block_q: int | None = None, block_k: int | None = None,
                               bytes_per_element: int = 4) -> int:
    """Bytes of the largest tensor attention creates, for ``batch_heads`` = batch × heads.

    Naive (``block_q`` = ``block_k`` = None): the score matrix, bh·s²·e (or the (s, d) output if
    larger). Tiled: one score tile bh·min(block_q, s)·min(block_k, s)·e, or the (s, d) output,
    whichever is larger: O(s·d + block²) instead of O(s²).
    """
    s = integer("seq_len", seq_len, 1)
    d = integer("head_dim", head_dim, 1)
    bh = integer("batch_heads", batch_heads, 1)
    e = integer("bytes_per_element", bytes_per_element, 1)
    if (block_q is None) != (block_k is None):
        raise ValueError("block_q and block_k must both be None (naive) or both be ints (tiled)")
    if block_q is None:
        tile = s * s
    else:
        tile = min(integer("block_q", block_q, 1), s) * min(integer("block_k", block_k, 1), s)
    return bh * e * max(tile, s * d)


class LargestTensorTracker(TorchDispatchMode):
    """Record the bytes of the largest tensor storage any op creates while the mode is active.

    A CPU stand-in for reading a GPU profiler: inputs created before entering are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.largest_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr()
                  for t in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                self.largest_bytes = max(self.largest_bytes, t.untyped_storage().nbytes())
        return out


@dataclass(frozen=True)
class MemoryMeasurement:
    """Largest tensor measured while running an attention function, and the formula's value."""

    measured_bytes: int
    predicted_bytes: int


def measure_largest_intermediate(fn: Callable[..., torch.Tensor], seq_len: int, head_dim: int,
                                 batch_heads: int = 1, block_q: int | None = None,
                                 block_k: int | None = None, causal: bool = False,
                                 seed: int = 0) -> MemoryMeasurement:
    """Run ``fn(q, k, v, causal[, block_q, block_k])`` on random fp32 inputs of shape
    (batch_heads, seq_len, head_dim) under :class:`LargestTensorTracker`; return the largest
    tensor it created (bytes) and :func:`largest_intermediate_bytes`' prediction."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch_heads, seq_len, head_dim, generator=g) for _ in range(3))
    kwargs = {} if block_q is None else {"block_q": block_q, "block_k": block_k}
    with torch.no_grad(), LargestTensorTracker() as tracker:
        fn(q, k, v, causal, **kwargs)
    return MemoryMeasurement(tracker.largest_bytes, largest_intermediate_bytes(
        seq_len, head_dim, batch_heads, block_q, block_k, bytes_per_element=4))
