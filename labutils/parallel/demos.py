"""Small workers that exercise :func:`labutils.parallel.launch` (used by its tests and Chapter 0).

Workers must live in an importable module: spawned ranks re-import them by name.
"""

from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist

from labutils.parallel.grid import rank_device


def whoami() -> tuple[int, int, int]:
    """Return (rank, world size, process id)."""
    return dist.get_rank(), dist.get_world_size(), os.getpid()


def ring_exchange(n: int = 4) -> list[float]:
    """Send a tensor holding this rank's id to the next rank and receive from the previous one.

    Returns what arrived: ``[previous_rank] * n``.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    send = torch.full((n,), float(rank), device=rank_device())
    recv = torch.empty(n, device=rank_device())
    # isend/irecv pairs avoid the deadlock a blocking send on every rank would cause.
    ops = [dist.P2POp(dist.isend, send, (rank + 1) % world),
           dist.P2POp(dist.irecv, recv, (rank - 1) % world)]
    for req in dist.batch_isend_irecv(ops):
        req.wait()
    return recv.tolist()


def fail_on_rank(bad_rank: int) -> int:
    """Raise on ``bad_rank``; the other ranks wait in a collective that never completes."""
    if dist.get_rank() == bad_rank:
        raise ValueError(f"deliberate failure on rank {bad_rank}")
    dist.barrier()
    return dist.get_rank()


def hang_on_rank(bad_rank: int) -> int:
    """Sleep forever on ``bad_rank``; used to prove that launch's timeout stops every process."""
    if dist.get_rank() == bad_rank:
        while True:
            time.sleep(1)
    return dist.get_rank()


def ring_all_reduce_check(numel: int = 1_000_003) -> float:
    """Sum a random tensor with our send/recv ring all-reduce and with ``dist.all_reduce``.

    Returns the largest absolute difference (float32). Runs on the rank's GPU under NCCL, so the
    teaching collective of Chapter 5 can be checked on real GPUs with torchrun.
    """
    from labutils.parallel.collectives import ring_all_reduce

    gen = torch.Generator().manual_seed(dist.get_rank())
    x = torch.randn(numel, generator=gen).to(rank_device())
    ours, reference = x.clone(), x.clone()
    ring_all_reduce(ours)
    dist.all_reduce(reference)
    return (ours - reference).abs().max().item()


def ring_collectives_check(numel: int = 1001) -> float:
    """Run our ring all-reduce, reduce-scatter and all-gather and return the largest error.

    The expected values need no communication: rank r holds ``(r+1)·[0..n)``, so the sum is
    ``p(p+1)/2·[0..n)``; the gather of ``[r, r, r]`` is ``[0,0,0, 1,1,1, ...]``. ``numel`` = 1001
    is not divisible by 2, 3 or 4, so the ring's chunks have unequal sizes. Runs under torchrun
    (``python -m labutils.parallel.run ring_collectives``) with gloo or NCCL.
    """
    from labutils.parallel.collectives import (chunk_bounds, ring_all_gather, ring_all_reduce,
                                               ring_reduce_scatter)

    rank, p = dist.get_rank(), dist.get_world_size()
    dev = rank_device()
    x = torch.arange(numel, dtype=torch.float64, device=dev) * (rank + 1)  # (n,)
    total = torch.arange(numel, dtype=torch.float64, device=dev) * (p * (p + 1) / 2)  # (n,)
    a, b = chunk_bounds(numel, p)[rank]
    errors = [(ring_reduce_scatter(x) - total[a:b]).abs().max().item() if b > a else 0.0]
    gathered = ring_all_gather(torch.full((3,), float(rank), dtype=torch.float64, device=dev))
    expected = torch.arange(p, dtype=torch.float64, device=dev).repeat_interleave(3)  # (3p,)
    errors.append((gathered - expected).abs().max().item())
    ring_all_reduce(x)
    errors.append((x - total).abs().max().item())
    return max(errors)


def grid_sums_worker(dp: int, pp: int, cp: int, tp: int) -> dict[str, float]:
    """Build a :class:`labutils.parallel.grid.RankGrid` and, along each axis, all-reduce the
    global rank: the sum of the ranks of this rank's group, which the test predicts."""
    from labutils.parallel.grid import AXES, GridShape, RankGrid

    grid = RankGrid(GridShape(dp, pp, cp, tp))
    out = {}
    for axis in AXES:
        x = torch.tensor([float(dist.get_rank())], device=rank_device())
        dist.all_reduce(x, group=grid.group(axis))
        out[axis] = x.item()
    return out


def logged_ring_all_reduce(numel: int) -> tuple[int, int]:
    """Our ring all-reduce of ``numel`` float32 elements inside a comm log: (bytes sent,
    messages sent) on this rank."""
    from labutils.parallel import comm_log
    from labutils.parallel.collectives import ring_all_reduce

    with comm_log.recording() as log:
        ring_all_reduce(torch.ones(numel, device=rank_device()))
    return log.sent_bytes(), log.messages_sent()
