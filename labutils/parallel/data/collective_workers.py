"""Chapter 5's collective workers: our ring and naive all-reduce against ``dist.all_reduce``,
the bytes each rank sends (from the comm log), and timings for the α–β fit.

Workers run through :func:`labutils.parallel.launch`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.distributed as dist

from labutils.parallel import comm_log
from labutils.parallel.collectives import (chunk_bounds, naive_all_reduce, ring_all_gather,
                                           ring_all_reduce, ring_reduce_scatter)
from labutils.validate import integer

IMPLS = ("ring", "naive", "torch")


def _all_reduce_by(impl: str):
    if impl == "ring":
        return ring_all_reduce
    if impl == "naive":
        return naive_all_reduce
    if impl == "torch":
        return dist.all_reduce
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def check_all_reduce_worker(numels: Sequence[int], impl: str = "ring", seed: int = 0,
                            dtype: str = "float64") -> list[dict]:
    """For each size, all-reduce random data with ``impl`` and with ``dist.all_reduce``.

    Returns one dict per size: ``max_abs_diff`` between the two, and this rank's
    ``sent_bytes``/``received_bytes``/``messages_sent`` for ``impl``.
    """
    fn = _all_reduce_by(impl)
    rank = dist.get_rank()
    out = []
    for numel in numels:
        g = torch.Generator().manual_seed(seed * 1000 + rank * 7919 + int(numel))
        x = torch.randn(int(numel), generator=g, dtype=getattr(torch, dtype))
        ref = x.clone()
        dist.all_reduce(ref)
        with comm_log.recording() as log:
            fn(x)
        diff = (x - ref).abs().max().item() if numel else 0.0
        out.append(dict(numel=int(numel), max_abs_diff=diff, sent_bytes=log.sent_bytes(),
                        received_bytes=log.received_bytes(), messages_sent=log.messages_sent()))
    return out


def compare_all_reduce_worker(numels: Sequence[int], impls: Sequence[str] = ("ring", "naive"),
                              seed: int = 0) -> dict[str, list[dict]]:
    """:func:`check_all_reduce_worker` for several implementations in one launch."""
    return {impl: check_all_reduce_worker(numels, impl, seed) for impl in impls}


def check_scatter_gather_worker(numel: int) -> dict:
    """Run :func:`ring_reduce_scatter` and :func:`ring_all_gather` on rank-dependent data and
    return what this rank got alongside the expected values (computed without communication)."""
    rank, p = dist.get_rank(), dist.get_world_size()
    x = torch.arange(numel, dtype=torch.float64) * (rank + 1)  # rank r holds (r+1)·[0..n)
    total = torch.arange(numel, dtype=torch.float64) * (p * (p + 1) / 2)
    a, b = chunk_bounds(numel, p)[rank]
    gathered = ring_all_gather(torch.full((3,), float(rank)))
    return dict(scatter=ring_reduce_scatter(x), scatter_expected=total[a:b],
                gather=gathered, gather_expected=torch.arange(p).repeat_interleave(3).double())


def time_all_reduce_worker(sizes_bytes: Sequence[int], impl: str = "torch", repeats: int = 5,
                           warmup: int = 1) -> list[float]:
    """Seconds for one all-reduce of a float32 tensor of each size, measured on this rank.

    Each timed call starts after a barrier, so the ranks start together. Returns the fastest of
    ``repeats`` calls (the one least disturbed by other processes on a shared machine, as
    ``timeit`` advises); take the max over ranks, since the collective ends when the slowest
    rank does.
    """
    fn = _all_reduce_by(impl)
    repeats = integer("repeats", repeats, 1)
    best = []
    for n_bytes in sizes_bytes:
        x = torch.ones(max(1, int(n_bytes) // 4), dtype=torch.float32)
        times = []
        for i in range(warmup + repeats):
            dist.barrier()
            t0 = time.perf_counter()
            fn(x)
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
        best.append(min(times))
    return best


def ring_with_bad_rank_worker(bad_rank: int, numel: int = 1000) -> None:
    """Rank ``bad_rank`` passes a non-contiguous tensor (a ValueError) while its peers wait in
    the ring: shows that a failure surfaces as an error instead of a hang."""
    x = torch.ones(numel, 2)
    ring_all_reduce(x.t() if dist.get_rank() == bad_rank else x)


def measure_all_reduce(sizes_bytes: Sequence[int], world_size: int = 2, impl: str = "torch",
                       repeats: int = 5, timeout_s: float = 60.0) -> list[float]:
    """Launch ``world_size`` gloo ranks and return, per message size, the all-reduce time in
    seconds: the best of ``repeats`` on each rank, then the slowest rank (see
    :func:`time_all_reduce_worker`)."""
    from labutils.parallel.launch import launch

    _all_reduce_by(impl)  # validate before starting processes
    per_rank = launch(time_all_reduce_worker, world_size, list(sizes_bytes), impl, repeats,
                      timeout_s=timeout_s)
    return [max(col) for col in zip(*per_rank)]
