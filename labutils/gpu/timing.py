"""How the GPU benchmarks time a call: CUDA events on a GPU, the wall clock for a CPU rehearsal.

Both return the median seconds per call after warm-up calls (the first call of a Triton kernel
compiles it; the first CUDA call initialises the context), so one slow call does not move the
result.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from labutils.validate import integer


def time_cuda_s(fn: Callable[[], object], warmup: int = 3, repeats: int = 10) -> float:
    """Median seconds per call of ``fn``, timed with CUDA events after ``warmup`` calls."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    integer("warmup", warmup, 0)
    integer("repeats", repeats, 1)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def wall_time_s(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall-clock seconds per call after one warm-up call (CPU rehearsals only: the
    numbers check a code path, they measure nothing worth recording)."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    integer("repeats", repeats, 1)
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def timer_for(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """:func:`time_cuda_s` on a CUDA device, :func:`wall_time_s` elsewhere."""
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__}")
    return time_cuda_s if device.type == "cuda" else wall_time_s
