"""FlashAttention-2 forward and backward in Triton (Dao 2023), wrapped in an autograd Function.

Chapter 8 built tiled attention in PyTorch from the online softmax: visit the keys block by block,
keep for each query a running max m, a running sum l and an unnormalised output, and rescale them
when the max grows. Never is the (T × T) score matrix stored. Here the same algebra is a kernel.

* **forward**: one program per (block of BLOCK_M queries, batch·head). It loops over key blocks
  (only those at or before its queries when causal), and at the end stores O and the
  log-sum-exp ``lse = m + log l`` of each query row, 4 bytes per row instead of T.
* **backward**: with P = exp(S − lse) recomputed from the saved lse, and
  ``delta = rowsum(dO ∘ O)``, the gradients are dV = Pᵀ dO, dP = dO Vᵀ,
  dS = P ∘ (dP − delta), dQ = scale·dS K, dK = scale·dSᵀ Q. One kernel owns a block of keys
  and accumulates dK, dV over all queries; another owns a block of queries and accumulates dQ
  over all keys (FlashAttention-2's split: no atomics).

Scores and softmax statistics are fp32; with 16-bit inputs, P and dS are rounded to the input
dtype before their matmuls, as FlashAttention does. Shapes: q, k, v and o are (B, H, T, D), with
T any length and D a power of two in [16, 128].
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from labutils.kernels import interpreted
from labutils.kernels._checks import check_tensor
from labutils.validate import positive

HEAD_DIMS = (16, 32, 64, 128)


@triton.jit
def _fwd_kernel(q_ptr, k_ptr, v_ptr, o_ptr, lse_ptr, T, sm_scale,
                CAUSAL: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr,
                BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)  # which block of queries
    bh = tl.program_id(1)  # which (batch, head); q, k, v, o are (BH, T, D) contiguous
    base = bh * T * D
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,) query rows
    rd = tl.arange(0, D)  # (D,)
    q = tl.load(q_ptr + base + rm[:, None] * D + rd[None, :], mask=rm[:, None] < T, other=0.0)
    m_i = tl.full((BLOCK_M,), -float("inf"), dtype=tl.float32)  # running max of each row
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)  # running sum of exp(s - m)
    acc = tl.zeros((BLOCK_M, D), dtype=tl.float32)  # running unnormalised output
    hi = T
    if CAUSAL:
        hi = tl.minimum(T, (pid_m + 1) * BLOCK_M)  # keys after the last query are never seen
    for n0 in range(0, hi, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)  # (BN,) key rows
        kv_mask = rn[:, None] < T
        k = tl.load(k_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale  # (BM, BN) fp32
        valid = rn[None, :] < T
        if CAUSAL:
            valid = valid & (rm[:, None] >= rn[None, :])
        s = tl.where(valid, s, -float("inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))  # (BM,)
        p = tl.exp(s - m_new[:, None])  # (BM, BN)
        alpha = tl.exp(m_i - m_new)  # rescales what was accumulated under the old max
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    o = acc / l_i[:, None]
    tl.store(o_ptr + base + rm[:, None] * D + rd[None, :], o.to(o_ptr.dtype.element_ty),
             mask=rm[:, None] < T)
    tl.store(lse_ptr + bh * T + rm, m_i + tl.log(l_i), mask=rm < T)


@triton.jit
def _bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dk_ptr, dv_ptr, T, sm_scale,
                     CAUSAL: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr,
                     BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_n = tl.program_id(0)  # which block of keys
    bh = tl.program_id(1)
    base = bh * T * D
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,) key rows
    rd = tl.arange(0, D)
    kv_mask = rn[:, None] < T
    k = tl.load(k_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
    v = tl.load(v_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
    dk = tl.zeros((BLOCK_N, D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, D), dtype=tl.float32)
    lo = 0
    if CAUSAL:
        lo = (pid_n * BLOCK_N) // BLOCK_M * BLOCK_M  # earlier queries never see these keys
    for m0 in range(lo, T, BLOCK_M):
        rm = m0 + tl.arange(0, BLOCK_M)  # (BM,) query rows
        q_mask = rm[:, None] < T
        q = tl.load(q_ptr + base + rm[:, None] * D + rd[None, :], mask=q_mask, other=0.0)
        do = tl.load(do_ptr + base + rm[:, None] * D + rd[None, :], mask=q_mask, other=0.0)
        lse = tl.load(lse_ptr + bh * T + rm, mask=rm < T, other=0.0)  # (BM,)
        delta = tl.load(delta_ptr + bh * T + rm, mask=rm < T, other=0.0)  # (BM,)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale  # (BM, BN)
        valid = (rm[:, None] < T) & (rn[None, :] < T)
        if CAUSAL:
            valid = valid & (rm[:, None] >= rn[None, :])
        p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)  # softmax recomputed from the lse
        dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION)  # (BN, D)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)  # (BM, BN)
        ds = p * (dp - delta[:, None]) * sm_scale  # (BM, BN)
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION)  # (BN, D)
    tl.store(dk_ptr + base + rn[:, None] * D + rd[None, :], dk.to(dk_ptr.dtype.element_ty), mask=kv_mask)
    tl.store(dv_ptr + base + rn[:, None] * D + rd[None, :], dv.to(dv_ptr.dtype.element_ty), mask=kv_mask)


@triton.jit
def _bwd_dq_kernel(q_ptr, k_ptr, v_ptr, do_ptr, lse_ptr, delta_ptr, dq_ptr, T, sm_scale,
                   CAUSAL: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr,
                   BLOCK_N: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)  # which block of queries
    bh = tl.program_id(1)
    base = bh * T * D
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rd = tl.arange(0, D)
    q_mask = rm[:, None] < T
    q = tl.load(q_ptr + base + rm[:, None] * D + rd[None, :], mask=q_mask, other=0.0)
    do = tl.load(do_ptr + base + rm[:, None] * D + rd[None, :], mask=q_mask, other=0.0)
    lse = tl.load(lse_ptr + bh * T + rm, mask=rm < T, other=0.0)
    delta = tl.load(delta_ptr + bh * T + rm, mask=rm < T, other=0.0)
    dq = tl.zeros((BLOCK_M, D), dtype=tl.float32)
    hi = T
    if CAUSAL:
        hi = tl.minimum(T, (pid_m + 1) * BLOCK_M)
    for n0 in range(0, hi, BLOCK_N):
        rn = n0 + tl.arange(0, BLOCK_N)
        kv_mask = rn[:, None] < T
        k = tl.load(k_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_ptr + base + rn[:, None] * D + rd[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * sm_scale
        valid = (rm[:, None] < T) & (rn[None, :] < T)
        if CAUSAL:
            valid = valid & (rm[:, None] >= rn[None, :])
        p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None]) * sm_scale
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)  # (BM, D)
    tl.store(dq_ptr + base + rm[:, None] * D + rd[None, :], dq.to(dq_ptr.dtype.element_ty), mask=q_mask)


def _blocks(block_m: int | None, block_n: int | None) -> tuple[int, int]:
    default = 32 if interpreted() else 64  # small tiles keep the CPU interpreter quick
    bm, bn = block_m or default, block_n or default
    for name, b in (("block_m", bm), ("block_n", bn)):
        if not isinstance(b, int) or b < 16 or b & (b - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {b!r}")
    return bm, bn


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int]:
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, ndim=4)
    if not (q.shape == k.shape == v.shape):
        raise ValueError(f"q, k and v must have the same shape (B, H, T, D), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)} and {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must have the same dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    B, H, T, D = q.shape
    if D not in HEAD_DIMS:
        raise ValueError(f"head size D = q.shape[-1] must be one of {HEAD_DIMS}, got {D}")
    if T < 1:
        raise ValueError(f"sequence length T = q.shape[2] must be >= 1, got {T}")
    return B, H, T, D


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"  # exact fp32 products; ignored for 16-bit


def flash_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                  sm_scale: float | None = None, block_m: int | None = None,
                  block_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """O (B, H, T, D) and the fp32 log-sum-exp (B, H, T) of softmax(scale·Q Kᵀ) V."""
    B, H, T, D = _check_qkv(q, k, v)
    bm, bn = _blocks(block_m, block_n)
    scale = 1.0 / math.sqrt(D) if sm_scale is None else positive("sm_scale", sm_scale)
    o = torch.empty_like(q)
    lse = torch.empty((B, H, T), dtype=torch.float32, device=q.device)
    grid = (triton.cdiv(T, bm), B * H)
    _fwd_kernel[grid](q, k, v, o, lse, T, scale, CAUSAL=bool(causal), D=D, BLOCK_M=bm,
                      BLOCK_N=bn, PRECISION=_precision(q.dtype))
    return o, lse


def flash_backward(q, k, v, o, lse, do, causal: bool = False, sm_scale: float | None = None,
                   block_m: int | None = None, block_n: int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dQ, dK, dV of attention from the forward's O and lse and the output gradient dO."""
    B, H, T, D = _check_qkv(q, k, v)
    bm, bn = _blocks(block_m, block_n)
    scale = 1.0 / math.sqrt(D) if sm_scale is None else float(sm_scale)
    do = do.contiguous()
    delta = (do.float() * o.float()).sum(-1)  # (B, H, T): rowsum(dO ∘ O) = rowsum(P ∘ dP)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    prec = _precision(q.dtype)
    _bwd_dkdv_kernel[(triton.cdiv(T, bn), B * H)](
        q, k, v, do, lse, delta, dk, dv, T, scale, CAUSAL=bool(causal), D=D, BLOCK_M=bm,
        BLOCK_N=bn, PRECISION=prec)
    _bwd_dq_kernel[(triton.cdiv(T, bm), B * H)](
        q, k, v, do, lse, delta, dq, T, scale, CAUSAL=bool(causal), D=D, BLOCK_M=bm,
        BLOCK_N=bn, PRECISION=prec)
    return dq, dk, dv


class FlashAttention(torch.autograd.Function):
    """softmax(scale·Q Kᵀ [+ causal mask]) V with the Triton kernels above, forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, causal=False, sm_scale=None):
        o, lse = flash_forward(q, k, v, causal, sm_scale)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.sm_scale = causal, sm_scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = flash_backward(q, k, v, o, lse, do, ctx.causal, ctx.sm_scale)
        return dq, dk, dv, None, None


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    sm_scale: float | None = None) -> torch.Tensor:
    """Attention output (B, H, T, D), differentiable in q, k and v."""
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    return FlashAttention.apply(q, k, v, causal, sm_scale)


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                        sm_scale: float | None = None) -> torch.Tensor:
    """The same attention in plain PyTorch (fp32 math), materialising the (T × T) scores."""
    D = q.shape[-1]
    scale = 1.0 / math.sqrt(D) if sm_scale is None else sm_scale
    s = (q.float() @ k.float().transpose(-2, -1)) * scale  # (B, H, T, T)
    if causal:
        T = q.shape[2]
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    return (s.softmax(-1) @ v.float()).to(q.dtype)
