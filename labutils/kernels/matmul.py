"""Tiled matmul: C = A @ B, one program per (BLOCK_M × BLOCK_N) tile of C.

Each program walks along K in steps of BLOCK_K, loading a (BLOCK_M × BLOCK_K) tile of A and a
(BLOCK_K × BLOCK_N) tile of B and adding their product into an fp32 accumulator
(Chapter 9: sums of many 16-bit products need fp32). A tile of A is reused BLOCK_N times and a
tile of B BLOCK_M times, so the kernel does 2·BM·BN·BK FLOPs per (BM + BN)·BK elements loaded:
bigger tiles, higher arithmetic intensity, further right on the roofline (Chapter 3).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from labutils.kernels._checks import check_tensor
from labutils.validate import positive_int

INPUT_PRECISIONS = ("ieee", "tf32")


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K,
                  stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                  INPUT_PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)  # which row-block of C
    pid_n = tl.program_id(1)  # which column-block of C
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BM,) rows of A and C
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BN,) columns of B and C
    rk = tl.arange(0, BLOCK_K)  # (BK,)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)  # fp32 accumulator
    for k0 in range(0, K, BLOCK_K):
        k = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * stride_am + k[None, :] * stride_ak,  # (BM, BK)
                    mask=(rm[:, None] < M) & (k[None, :] < K), other=0.0)
        b = tl.load(b_ptr + k[:, None] * stride_bk + rn[None, :] * stride_bn,  # (BK, BN)
                    mask=(k[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc += tl.dot(a, b, input_precision=INPUT_PRECISION)  # (BM, BN)
    c = acc.to(c_ptr.dtype.element_ty)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, c,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def matmul(a: torch.Tensor, b: torch.Tensor, *, block_m: int = 64, block_n: int = 64,
           block_k: int = 32, input_precision: str = "ieee", num_warps: int = 4,
           num_stages: int = 3) -> torch.Tensor:
    """A (M, K) @ B (K, N) → C (M, N) in A's dtype, accumulated in fp32.

    ``input_precision="ieee"`` multiplies fp32 inputs exactly; ``"tf32"`` lets tensor cores round
    them to TF32 first (faster on a GPU, about 3 decimal digits). 16-bit inputs always use the
    tensor cores' native precision. Block sizes must be powers of two ≥ 16. ``num_warps``
    (threads per program / 32) and ``num_stages`` (software-pipelining depth of the K loop) only
    matter when compiled for a GPU; the interpreter ignores them.
    """
    check_tensor("a", a, ndim=2)
    check_tensor("b", b, ndim=2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must be (M, K) and (K, N), got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    for name, blk in (("block_m", block_m), ("block_n", block_n), ("block_k", block_k)):
        if not isinstance(blk, int) or blk < 16 or blk & (blk - 1):
            raise ValueError(f"{name} must be a power of two >= 16, got {blk!r}")
    if input_precision not in INPUT_PRECISIONS:
        raise ValueError(f"input_precision must be one of {INPUT_PRECISIONS}, got {input_precision!r}")
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(M, block_m), triton.cdiv(N, block_n))  # one program per tile of C
    precision = input_precision if a.dtype == torch.float32 else "tf32"  # ignored for 16-bit
    matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                        c.stride(0), c.stride(1), BLOCK_M=block_m, BLOCK_N=block_n,
                        BLOCK_K=block_k, INPUT_PRECISION=precision, num_warps=num_warps,
                        num_stages=num_stages)
    return c


def matmul_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """fp32-accumulated reference, rounded to the inputs' dtype."""
    return (a.float() @ b.float()).to(a.dtype)


def arithmetic_intensity(block_m: int, block_n: int, block_k: int, bytes_per_element: int) -> float:
    """FLOPs per byte loaded by one K-step of one program: 2·BM·BN·BK / ((BM + BN)·BK·bytes)."""
    for name, v in (("block_m", block_m), ("block_n", block_n), ("block_k", block_k),
                    ("bytes_per_element", bytes_per_element)):
        positive_int(name, v)
    return 2 * block_m * block_n * block_k / ((block_m + block_n) * block_k * bytes_per_element)
