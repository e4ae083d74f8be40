"""Collectives built from point-to-point messages, and the α–β model that prices them.

Chapter 5 (data parallelism) builds NCCL's vocabulary from ``send``/``recv`` alone:

* :func:`ring_reduce_scatter` and :func:`ring_all_gather`, each ``p - 1`` neighbour exchanges;
* :func:`ring_all_reduce` = reduce-scatter + all-gather (Patarasuk & Yuan 2009), which sends
  ``2·(p−1)/p·n`` bytes per rank, the bandwidth-optimal amount;
* :func:`naive_all_reduce` (everything to rank 0, sum, send back) for comparison: the root sends
  ``(p−1)·n`` bytes, a bottleneck that grows with ``p``.

:func:`labutils.parallel.comm_log.recording` counts the bytes each of these sends on this rank
(every message goes through :func:`exchange`). :func:`alpha_beta_time`
prices an all-reduce as ``a·α + b·β`` (α: seconds per message, β: seconds per byte; Thakur,
Rabenseifner & Gropp 2005), and :func:`fit_alpha_beta` recovers α and β from measured timings.

Everything here runs inside a worker started by :func:`labutils.parallel.launch` (the default
process group must exist). Chunks follow :func:`chunk_bounds`, so sizes need not divide evenly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# The links are priced in one place, labutils.hardware; imported here for the chapters that read
# them next to the collectives.
from labutils.hardware import INFINIBAND, LINKS, NVSWITCH, NVSWITCH_PER_DIRECTION, Link  # noqa: F401
from labutils.parallel import comm_log
from labutils.parallel.grid import global_rank
from labutils.validate import integer, non_negative, positive

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


# ----------------------------------------------------------------------------------------------
# The α–β cost model
# ----------------------------------------------------------------------------------------------

ALGORITHMS = ("ring", "tree", "recursive_doubling", "rabenseifner", "naive")


def alpha_beta_coefficients(n_bytes: float, world_size: int,
                            algorithm: str = "ring") -> tuple[float, float]:
    """``(a, b)`` such that an all-reduce of ``n_bytes`` on ``world_size`` ranks takes
    ``a·α + b·β`` seconds (reduction arithmetic ignored; ⌈log2 p⌉ rounds for the log-depth ones).

    * ring: ``2(p−1)·α + 2(p−1)/p·n·β`` (Patarasuk & Yuan 2009; Thakur et al. 2005)
    * tree: binomial-tree reduce then broadcast, ``2⌈lg p⌉·(α + n·β)``
    * recursive_doubling: ``⌈lg p⌉·(α + n·β)`` (Thakur et al. 2005, short messages)
    * rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather,
      ``2⌈lg p⌉·α + 2(p−1)/p·n·β`` (Thakur et al. 2005, long messages)
    * naive: all to a root and back, the root's link serialises ``2(p−1)`` messages of n bytes
    """
    n = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 1)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if p == 1:
        return 0.0, 0.0
    lg = math.ceil(math.log2(p))
    if algorithm == "ring":
        return 2.0 * (p - 1), 2.0 * (p - 1) / p * n
    if algorithm == "tree":
        return 2.0 * lg, 2.0 * lg * n
    if algorithm == "recursive_doubling":
        return float(lg), lg * n
    if algorithm == "rabenseifner":
        return 2.0 * lg, 2.0 * (p - 1) / p * n
    return 2.0 * (p - 1), 2.0 * (p - 1) * n  # naive


def alpha_beta_time(n_bytes: float, world_size: int, alpha_s: float, beta_s_per_byte: float,
                    algorithm: str = "ring") -> float:
    """Seconds for an all-reduce of ``n_bytes`` over ``world_size`` ranks in the α–β model.

    ``alpha_s``: seconds per message (latency); ``beta_s_per_byte``: seconds per byte
    (1 / link bandwidth). See :func:`alpha_beta_coefficients` for each algorithm's formula.
    """
    alpha_s = non_negative("alpha_s", alpha_s)
    beta_s_per_byte = non_negative("beta_s_per_byte", beta_s_per_byte)
    a, b = alpha_beta_coefficients(n_bytes, world_size, algorithm)
    return a * alpha_s + b * beta_s_per_byte


def link_all_reduce_time(n_bytes: float, world_size: int, link: Link,
                         algorithm: str = "ring") -> float:
    """:func:`alpha_beta_time` with α and β taken from a :class:`Link` (e.g. ``NVSWITCH``)."""
    if not isinstance(link, Link):
        raise TypeError(f"link must be a Link (e.g. NVSWITCH, INFINIBAND), got {link!r}")
    return alpha_beta_time(n_bytes, world_size, link.latency_s, link.beta_s_per_byte, algorithm)


def bus_bandwidth_bytes_per_s(n_bytes: float, time_s: float, world_size: int) -> float:
    """nccl-tests' "bus bandwidth" of an all-reduce: ``n/t · 2(p−1)/p`` bytes/s.

    It is what each link carried, so it tends to 1/β for large messages on a ring
    (nccl-tests, doc/PERFORMANCE.md).
    """
    n = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 2)
    time_s = positive("time_s", time_s)
    return n / time_s * 2.0 * (p - 1) / p


@dataclass(frozen=True)
class AlphaBetaFit:
    """α (s/message) and β (s/byte) fitted to all-reduce timings of one algorithm and size p."""

    alpha_s: float
    beta_s_per_byte: float
    world_size: int
    algorithm: str
    max_rel_error: float  # largest |model − measured| / measured over the fitted points

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """1 / β in bytes/s (inf when β = 0)."""
        return math.inf if self.beta_s_per_byte == 0 else 1.0 / self.beta_s_per_byte

    def predict(self, n_bytes: float) -> float:
        """Modelled all-reduce time in seconds for ``n_bytes``."""
        return alpha_beta_time(n_bytes, self.world_size, self.alpha_s, self.beta_s_per_byte,
                               self.algorithm)


def fit_alpha_beta(n_bytes: Sequence[float], times_s: Sequence[float], world_size: int,
                   algorithm: str = "ring") -> AlphaBetaFit:
    """Fit α, β ≥ 0 to measured all-reduce times by non-negative least squares.

    Residuals are relative (each row divided by its measured time), so that microsecond
    timings of small messages weigh as much as the seconds of large ones: α comes from the
    small messages, β from the large ones. Needs at least two distinct sizes.
    """
    from scipy.optimize import nnls

    x = np.asarray(n_bytes, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if x.ndim != 1 or t.ndim != 1 or len(x) != len(t):
        raise ValueError(f"n_bytes and times_s must be 1-D and of equal length, got shapes "
                         f"{x.shape} and {t.shape}")
    if not (np.all(np.isfinite(x)) and np.all(x >= 0)):
        raise ValueError("n_bytes must be finite and >= 0")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValueError("times_s must be finite and > 0 seconds")
    if len(np.unique(x)) < 2:
        raise ValueError("need timings at two or more distinct message sizes (n_bytes)")
    p = integer("world_size", world_size, 2)
    design = np.array([alpha_beta_coefficients(n, p, algorithm) for n in x])  # (m, 2)
    weighted = design / t[:, None]  # relative residuals: (a·α + b·β)/t − 1
    scale = np.linalg.norm(weighted, axis=0)  # columns differ by ~1e7; rescale for nnls
    coef, _ = nnls(weighted / scale, np.ones_like(t))
    alpha_s, beta = (coef / scale).tolist()
    model = design @ np.array([alpha_s, beta])
    return AlphaBetaFit(alpha_s, beta, p, algorithm, float(np.max(np.abs(model - t) / t)))


# ----------------------------------------------------------------------------------------------
# Workers (run through labutils.parallel.launch)
# ----------------------------------------------------------------------------------------------

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
