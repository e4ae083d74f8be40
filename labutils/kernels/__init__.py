"""GPU kernels in Triton, one small file each, written to be read (the GPU kernels chapter).

* :mod:`~labutils.kernels.vector_add`: the launch grid, program ids and masks (memory-bound)
* :mod:`~labutils.kernels.softmax`: a fused row softmax, one read and one write per element
* :mod:`~labutils.kernels.matmul`: a tiled matmul with an fp32 accumulator
* :mod:`~labutils.kernels.flash_attention`: FlashAttention-2 forward and backward, as a
  ``torch.autograd.Function``

Each module has a PyTorch reference (``*_reference``) and a launcher that checks its inputs. The
kernels use plain pointer arithmetic and masks only (no block pointers, no tensor descriptors,
no autotuning), so the same source runs on the Triton versions found on GPU machines (3.6 and
later) and on a CPU.

**On a CPU** Triton runs kernels with its interpreter, which executes the same source with NumPy
(slowly, but exactly enough to test). The interpreter is chosen by the environment variable
``TRITON_INTERPRET=1``, read when a ``@triton.jit`` function is defined. That is why this package
sets it, when PyTorch sees no CUDA device, *before* any kernel module is imported: importing
``labutils.kernels.softmax`` on a laptop gives an interpreted kernel, on a GPU a compiled one.
:func:`interpreted` says which.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # run the kernels on the CPU (see above)

try:
    import triton  # noqa: F401

    HAVE_TRITON = True
except ImportError:  # Triton ships wheels for Linux x86-64 only
    HAVE_TRITON = False


def interpreted() -> bool:
    """True when kernels run under Triton's CPU interpreter rather than compiled for a GPU."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def device() -> torch.device:
    """Where kernel inputs should live: the GPU when compiled, the CPU when interpreted."""
    return torch.device("cpu") if interpreted() else torch.device("cuda")


def require_triton() -> None:
    """Raise a clear error where Triton is missing (it has wheels for Linux x86-64 only)."""
    if not HAVE_TRITON:
        raise RuntimeError("labutils.kernels needs the `triton` package (Linux x86-64 wheels; "
                           "`pip install triton`)")
