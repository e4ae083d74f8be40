"""Collectives built from point-to-point messages: the communication every strategy shares.

Chapter 5 (data parallelism) builds NCCL's vocabulary from ``send``/``recv`` alone:

* :func:`ring_reduce_scatter` and :func:`ring_all_gather`, each ``p - 1`` neighbour exchanges;
* :func:`ring_all_reduce` = reduce-scatter + all-gather (Patarasuk & Yuan 2009), which sends
  ``2·(p−1)/p·n`` bytes per rank, the bandwidth-optimal amount;
* :func:`naive_all_reduce` (everything to rank 0, sum, send back) for comparison: the root sends
  ``(p−1)·n`` bytes, a bottleneck that grows with ``p``.

Every message goes through :func:`exchange` and is logged in
:mod:`labutils.parallel.comm_log`; :func:`ring_all_reduce_sent_elements` and the other byte
counts say what the log must show. Tensor parallelism (Chapter 6) runs its collectives on these
rings, in its own process group. The α–β model that prices them is
:mod:`labutils.parallel.alpha_beta`; the Chapter 5 workers are
:mod:`labutils.parallel.data.collective_workers`.

Everything here runs inside a worker started by :func:`labutils.parallel.launch` (the default
process group must exist). Chunks follow :func:`chunk_bounds`, so sizes need not divide evenly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

# Re-exported for the modules that read them here (labutils.grading, network_needs, the static
# widgets, Chapter 5's assignment): the links live in labutils.hardware, the α–β model in
# labutils.parallel.alpha_beta.
from labutils.parallel import comm_log
from labutils.parallel.grid import global_rank
from labutils.validate import integer, non_negative

# ----------------------------------------------------------------------------------------------
# Validation and bookkeeping
# ----------------------------------------------------------------------------------------------


def _check_tensor(tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"tensor must have a real numeric dtype, got {tensor.dtype}")
    if not tensor.is_contiguous():
        raise ValueError("tensor must be contiguous (call .contiguous() first): the ring works "
                         "on a flat view of its storage")
    if not dist.is_initialized():
        raise RuntimeError("no default process group: call this inside a worker run by "
                           "labutils.parallel.launch (or after dist.init_process_group)")
    return tensor


def chunk_bounds(numel: int, world_size: int) -> list[tuple[int, int]]:
    """Split ``numel`` elements into ``world_size`` contiguous chunks as ``[(start, end), ...]``.

    The first ``numel % world_size`` chunks hold one element more (as ``torch.tensor_split``
    does), so any size works; chunks may be empty when ``numel < world_size``.
    """
    numel = integer("numel", numel, 0)
    world_size = integer("world_size", world_size, 1)
    base, extra = divmod(numel, world_size)
    bounds, start = [], 0
    for i in range(world_size):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def exchange(send: torch.Tensor | None, dst: int, recv: torch.Tensor | None, src: int,
             direction: str = "", wait: bool = True) -> list:
    """Send ``send`` to global rank ``dst`` while receiving ``recv`` from ``src`` (either may be
    None/empty), and record both in the open :func:`labutils.parallel.comm_log.recording`
    blocks. With ``wait=False`` return the requests instead of waiting for them.

    Both are posted together with ``dist.batch_isend_irecv``. Separate ``isend``/``irecv`` calls
    are enough under gloo, but NCCL may block a send until its receive is posted, so a ring of
    three or more ranks can deadlock; NCCL's maintainers advise grouping each send with its
    receive (https://github.com/NVIDIA/nccl/issues/479), which is what ``batch_isend_irecv``
    does (one NCCL group per call).
    """
    ops = []
    if send is not None and send.numel() > 0:
        ops.append(dist.P2POp(dist.isend, send, dst))
        comm_log.record("send", send.numel(), send.element_size(), 2, direction)
    if recv is not None and recv.numel() > 0:
        ops.append(dist.P2POp(dist.irecv, recv, src))
        comm_log.record("recv", recv.numel(), recv.element_size(), 2, direction)
    reqs = dist.batch_isend_irecv(ops) if ops else []
    if wait:
        for req in reqs:
            req.wait()
        return []
    return reqs


# ----------------------------------------------------------------------------------------------
# Ring collectives from send/recv (Patarasuk & Yuan 2009)
# ----------------------------------------------------------------------------------------------


def _ring(group: dist.ProcessGroup | None) -> tuple[int, int, int, int]:
    """(rank in ``group``, group size, global rank of the next and of the previous rank)."""
    rank, p = dist.get_rank(group), dist.get_world_size(group)
    return rank, p, global_rank(group, (rank + 1) % p), global_rank(group, (rank - 1) % p)


def _ring_reduce_scatter_(flat: torch.Tensor, bounds: list[tuple[int, int]],
                          group: dist.ProcessGroup | None = None) -> None:
    """In place: afterwards ``flat[bounds[rank]]`` holds the sum of that chunk over all ranks.

    Step s (0..p-2): send chunk (r-s-1) to the next rank, receive chunk (r-s-2) from the
    previous one and add it. Every chunk travels once round the ring, collecting one addend per
    hop; rank r sends every chunk but its own: n - |c_r| elements.
    """
    rank, p, nxt, prv = _ring(group)
    for s in range(p - 1):
        sa, sb = bounds[(rank - s - 1) % p]
        ra, rb = bounds[(rank - s - 2) % p]
        buf = torch.empty(rb - ra, dtype=flat.dtype, device=flat.device)
        exchange(flat[sa:sb], nxt, buf, prv)
        flat[ra:rb] += buf


def _ring_all_gather_(flat: torch.Tensor, bounds: list[tuple[int, int]],
                      group: dist.ProcessGroup | None = None) -> None:
    """In place: rank r starts with chunk r correct and ends with every chunk.

    Step s (0..p-2): send chunk (r-s), receive chunk (r-s-1) straight into place. Rank r sends
    every chunk but (r+1)'s: n - |c_{r+1}| elements.
    """
    rank, p, nxt, prv = _ring(group)
    for s in range(p - 1):
        sa, sb = bounds[(rank - s) % p]
        ra, rb = bounds[(rank - s - 1) % p]
        exchange(flat[sa:sb], nxt, flat[ra:rb], prv)


def ring_all_reduce(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> None:
    """Sum ``tensor`` over the ranks of ``group`` (default: all), in place, with send/recv only.

    Reduce-scatter then all-gather round a ring (rank r sends to r+1). Each rank sends
    ``2·n − |c_r| − |c_{r+1}|`` elements, which is ``2·(p−1)/p·n`` when p divides n
    (see :func:`ring_all_reduce_sent_elements`). Works for any size and shape (contiguous).
    Every rank must call it with a tensor of the same shape and dtype.
    """
    tensor = _check_tensor(tensor)
    p = dist.get_world_size(group)
    if p == 1:
        return
    flat = tensor.view(-1)  # (n,) view on the same storage: updates land in ``tensor``
    bounds = chunk_bounds(flat.numel(), p)
    _ring_reduce_scatter_(flat, bounds, group)
    _ring_all_gather_(flat, bounds, group)


def ring_reduce_scatter(tensor: torch.Tensor,
                        group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """Return this rank's chunk (see :func:`chunk_bounds`) of the sum of ``tensor`` over the
    ranks of ``group`` (default: all).

    ``tensor`` (any shape, flattened) is left unchanged; the result is 1-D with
    ``chunk_bounds(n, p)[rank]`` elements. Same shape and dtype on every rank.
    """
    tensor = _check_tensor(tensor)
    rank, p = dist.get_rank(group), dist.get_world_size(group)
    flat = tensor.reshape(-1).clone()  # (n,) working copy
    bounds = chunk_bounds(flat.numel(), p)
    if p > 1:
        _ring_reduce_scatter_(flat, bounds, group)
    a, b = bounds[rank]
    return flat[a:b].clone()


def ring_all_gather(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """Concatenate the ``tensor`` of every rank of ``group`` (default: all; flattened, in group
    rank order) with send/recv round a ring.

    All ranks must pass tensors with the same number of elements and dtype; returns a 1-D
    tensor of ``p · n`` elements.
    """
    tensor = _check_tensor(tensor)
    rank, p = dist.get_rank(group), dist.get_world_size(group)
    n = tensor.numel()
    out = torch.empty(p * n, dtype=tensor.dtype, device=tensor.device)  # (p·n,)
    out[rank * n:(rank + 1) * n] = tensor.reshape(-1)
    if p > 1:
        _ring_all_gather_(out, [(i * n, (i + 1) * n) for i in range(p)], group)
    return out


def naive_all_reduce(tensor: torch.Tensor, root: int = 0) -> None:
    """Sum ``tensor`` over ranks in place the naive way: all send to ``root``, which sums and
    sends the result back to each rank in turn. The root sends and receives ``(p−1)·n`` bytes.
    """
    tensor = _check_tensor(tensor)
    rank, p = dist.get_rank(), dist.get_world_size()
    root = integer("root", root, 0)
    if root >= p:
        raise ValueError(f"root must be in [0, {p - 1}], got {root}")
    if p == 1:
        return
    if rank == root:
        buf = torch.empty_like(tensor)
        for src in range(p):
            if src != root:
                exchange(None, src, buf, src)
                tensor += buf
        for dst in range(p):
            if dst != root:
                exchange(tensor, dst, None, dst)
    else:
        exchange(tensor, root, None, root)
        exchange(None, root, tensor, root)


# ----------------------------------------------------------------------------------------------
# Byte counts
# ----------------------------------------------------------------------------------------------


def ring_all_reduce_bytes_per_rank(n_bytes: float, world_size: int) -> float:
    """Bytes each rank sends in a ring all-reduce of ``n_bytes``: ``2·(p−1)/p·n``.

    # Patarasuk & Yuan 2009: the lower bound for any all-reduce, met by the ring.
    Exact when p divides the element count; see :func:`ring_all_reduce_sent_elements`.
    """
    n_bytes = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 1)
    return 2.0 * (p - 1) / p * n_bytes


def ring_all_reduce_sent_elements(numel: int, world_size: int, rank: int) -> int:
    """Elements rank ``rank`` sends in :func:`ring_all_reduce`: ``2n − |c_r| − |c_{r+1}|``.

    Summed over ranks this is exactly ``2·(p−1)·n`` for any n.
    """
    p = integer("world_size", world_size, 1)
    rank = integer("rank", rank, 0)
    if rank >= p:
        raise ValueError(f"rank must be in [0, {p - 1}], got {rank}")
    if p == 1:
        return 0
    bounds = chunk_bounds(numel, p)
    size = [b - a for a, b in bounds]
    return 2 * numel - size[rank] - size[(rank + 1) % p]


def naive_all_reduce_bytes_per_rank(n_bytes: float, world_size: int, rank: int,
                                    root: int = 0) -> float:
    """Bytes rank ``rank`` sends in :func:`naive_all_reduce`: ``(p−1)·n`` at the root, else n."""
    n_bytes = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 1)
    rank, root = integer("rank", rank, 0), integer("root", root, 0)
    if rank >= p or root >= p:
        raise ValueError(f"rank and root must be in [0, {p - 1}], got rank={rank}, root={root}")
    if p == 1:
        return 0.0
    return (p - 1) * n_bytes if rank == root else n_bytes
