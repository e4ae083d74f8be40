"""Vector add: the smallest complete Triton kernel.

A kernel is a program that runs once per *block* of the output. ``tl.program_id(0)`` says which
block this instance owns; ``tl.arange`` gives the offsets inside it; a *mask* switches off the
lanes past the end when the length is not a multiple of the block. Each element is read twice and
written once (12 bytes per element in fp32) for one FLOP: the kernel is memory-bound, and its
speed is the memory bandwidth (Chapter 3's roofline).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from labutils.kernels._checks import check_tensor, element_size
from labutils.validate import positive_int


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    pid = tl.program_id(0)  # which block of BLOCK elements this program instance owns
    offsets = pid * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    mask = offsets < n_elements  # the last block may stick out past the end
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


def vector_add(x: torch.Tensor, y: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """x + y for contiguous tensors of the same shape and dtype, with :func:`add_kernel`."""
    check_tensor("x", x)
    check_tensor("y", y)
    if x.shape != y.shape or x.dtype != y.dtype:
        raise ValueError(f"x and y must have the same shape and dtype, got {tuple(x.shape)} "
                         f"{x.dtype} and {tuple(y.shape)} {y.dtype}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 16 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 16, got {block}")
    out = torch.empty_like(x)
    n = x.numel()
    grid = (triton.cdiv(n, block),)  # one program per block
    add_kernel[grid](x, y, out, n, BLOCK=block)
    return out


def vector_add_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def bytes_moved(n_elements: int, dtype: torch.dtype) -> int:
    """Bytes a vector add reads and writes: 2 inputs + 1 output."""
    return 3 * positive_int("n_elements", n_elements) * element_size(dtype)
