"""Fused row softmax: one read and one write of each element.

``torch.softmax`` written as three separate operations (max, exp-and-sum, divide) reads the
input about three times and writes intermediates; fused into one kernel, each program loads one
row into registers (BLOCK ≥ n_cols, a power of two), computes max, exponentials, sum and the
quotient there, and writes the row once. Memory traffic drops to 2 × the tensor's bytes, which is
what the roofline says a memory-bound kernel should cost. Arithmetic is in fp32 whatever the
input dtype (Chapter 9: accumulate 16-bit inputs in fp32).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from labutils.kernels._checks import check_tensor, element_size
from labutils.validate import positive_int

MAX_COLS = 65536  # one row must fit in a program's registers/shared memory


@triton.jit
def softmax_kernel(out_ptr, in_ptr, in_row_stride, out_row_stride, n_cols,
                   BLOCK: tl.constexpr):
    row = tl.program_id(0)  # one program per row
    cols = tl.arange(0, BLOCK)  # (BLOCK,)
    mask = cols < n_cols
    x = tl.load(in_ptr + row * in_row_stride + cols, mask=mask, other=-float("inf"))
    x = x.to(tl.float32)
    x = x - tl.max(x, axis=0)  # subtract the row max: exp never overflows
    num = tl.exp(x)  # masked lanes: exp(-inf) = 0, so they add nothing to the sum
    out = num / tl.sum(num, axis=0)
    tl.store(out_ptr + row * out_row_stride + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension of a contiguous 2-D tensor (rows, cols)."""
    check_tensor("x", x, ndim=2)
    rows, cols = x.shape
    if not 1 <= cols <= MAX_COLS:
        raise ValueError(f"x must have 1 to {MAX_COLS} columns, got {cols}")
    out = torch.empty_like(x)
    softmax_kernel[(rows,)](out, x, x.stride(0), out.stride(0), cols, BLOCK=triton.next_power_of_2(cols))
    return out


def softmax_reference(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.float(), dim=-1).to(x.dtype)


def unfused_bytes(rows: int, cols: int, dtype: torch.dtype) -> int:
    """Bytes moved by max, exp, sum and divide as separate kernels (each reads its input, writes
    its output): read x for the max, read x and write e = exp(x - max), read e for the sum,
    read e and write the result; the row vectors are negligible."""
    size = rows_cols_bytes(rows, cols, dtype)
    return 6 * size


def fused_bytes(rows: int, cols: int, dtype: torch.dtype) -> int:
    """Bytes moved by the fused kernel: read x once, write the result once."""
    return 2 * rows_cols_bytes(rows, cols, dtype)


def rows_cols_bytes(rows: int, cols: int, dtype: torch.dtype) -> int:
    """Bytes of one (rows, cols) tensor of ``dtype``, after checking the arguments."""
    positive_int("rows", rows)
    positive_int("cols", cols)
    return rows * cols * element_size(dtype)
