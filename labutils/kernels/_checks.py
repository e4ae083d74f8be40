"""Input checks shared by the kernel launchers: a clear error naming the argument, never a wrong
result from a kernel that assumed something about its input."""

from __future__ import annotations

import torch

from labutils.kernels import device, interpreted

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_tensor(name: str, t: object, ndim: int | None = None,
                 dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES) -> torch.Tensor:
    """``t`` if it is a contiguous tensor of an allowed dtype, on the kernels' device."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype in {[str(d) for d in dtypes]}, got {t.dtype}")
    if interpreted() and t.dtype == torch.bfloat16:
        raise TypeError(f"{name}: bfloat16 is not supported under the Triton interpreter (its dot "
                        "products are wrong there); use float16 or float32 on a CPU")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous() first)")
    if t.device.type != device().type:
        raise ValueError(f"{name} must be on {device().type} "
                         f"({'interpreter' if interpreted() else 'compiled'} kernels), got {t.device}")
    return t


def element_size(dtype: object) -> int:
    """Bytes per element of a torch dtype; a TypeError naming ``dtype`` for anything else."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float16, got {dtype!r}")
    return torch.tensor([], dtype=dtype).element_size()
