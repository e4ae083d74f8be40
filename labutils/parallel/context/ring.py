"""Ring attention on torch.distributed: the engine and the communication of context
parallelism (Chapter 8).

With context parallelism of degree p each rank holds 1/p of the sequence's tokens (laid out by
:mod:`labutils.parallel.context.sharding`): its queries stay put, while the key/value blocks
travel around a ring of ranks (Liu et al. 2023, "Ring Attention"; Lecture 1, *Pretraining
Large Language Models*, "Context Parallelism - 4D"). After p − 1 send/recv steps every rank has
seen every K/V block, and the partial results are combined with the online-softmax rule
(:func:`labutils.attention.merge_partials`), so the output is exactly that of ordinary
attention. :func:`ring_attention` posts the next block's send/receive before computing on the
current block, so the transfer can overlap the compute; every message goes through
:func:`labutils.parallel.collectives.exchange` and is logged (direction "forward" or
"backward") in :mod:`labutils.parallel.comm_log`.

The backward is distributed too, by recomputation (:func:`_ring_backward`): a second ring
carries each K/V block with its gradient accumulators, and the last hop brings them home.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from labutils.attention import block_attention, causal_mask, empty_partial, merge_partials
from labutils.parallel.collectives import exchange
from labutils.parallel.context.sharding import check_scheme, positions_of_rank
from labutils.parallel.grid import global_rank

@dataclass
class RingWork:
    """The compute one rank did in :func:`ring_attention`'s forward (what it sent is in the
    comm log: :func:`labutils.parallel.comm_log.recording`)."""

    score_pairs: int = 0  # unmasked (query, key) score entries computed
    blocks_computed: int = 0
    blocks_skipped: int = 0


Group = dist.ProcessGroup | None  # the context-parallel group; None: the whole world


def _exchange(send: torch.Tensor, recv: torch.Tensor, direction: str, wait: bool,
              group: Group) -> list:
    """Send ``send`` to ring rank r + 1 and receive ``recv`` from r − 1 (both logged)."""
    p, r = dist.get_world_size(group), dist.get_rank(group)
    return exchange(send, global_rank(group, (r + 1) % p), recv, global_rank(group, (r - 1) % p),
                    direction, wait)


def _ring_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scheme: str,
                  work: RingWork, group: Group) -> tuple[torch.Tensor, torch.Tensor]:
    """The ring loop of :func:`ring_attention`; returns (o, logsumexp of each query's scores)."""
    p, r = dist.get_world_size(group), dist.get_rank(group)
    s = q.shape[-2] * p
    q_pos = positions_of_rank(s, p, r, scheme).to(q.device)
    kv = torch.stack([k, v]).contiguous()  # one message per step: K and V together
    m, l, o = empty_partial(q, v.shape[-1])  # on q's device
    for t in range(p):
        reqs, nxt = [], None
        if t < p - 1:  # start moving the block we hold while we compute on it
            nxt = torch.empty_like(kv)
            reqs = _exchange(kv, nxt, "forward", False, group)  # overlaps the block's compute
        # the block that started on rank r - t
        k_pos = positions_of_rank(s, p, (r - t) % p, scheme).to(q.device)
        mask = causal_mask(q_pos, k_pos) if causal else None
        if mask is not None and not bool(mask.any()):
            work.blocks_skipped += 1  # fully masked: no work at all
        else:
            if mask is not None and bool(mask.all()):
                mask = None  # fully visible: no masking needed
            work.score_pairs += (int(mask.sum()) if mask is not None
                                  else q_pos.numel() * k_pos.numel())
            work.blocks_computed += 1
            m, l, o = merge_partials(m, l, o, *block_attention(q, kv[0], kv[1], mask))
        for req in reqs:
            req.wait()
        if nxt is not None:
            kv = nxt
    return o, m + torch.log(l)


def _ring_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
                   lse: torch.Tensor, do: torch.Tensor, causal: bool, scheme: str,
                   work: RingWork, group: Group) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ring attention by recomputation (FlashAttention's backward, blockwise).

    The probabilities of a block are recomputed from the saved logsumexp, P = exp(S − lse).
    With D = rowsum(dO ∘ O): dV += Pᵀ·dO, dS = P ∘ (dO·Vᵀ − D), dQ += dS·K/√d,
    dK += dSᵀ·Q/√d. Each K/V block travels round the ring together with its dK, dV
    accumulators (one message of 4 blocks per step, sent after the compute: no overlap here);
    after p − 1 steps the last hop carries only dK, dV home to the block's owner.
    """
    p, r = dist.get_world_size(group), dist.get_rank(group)
    s = q.shape[-2] * p
    scale = 1.0 / math.sqrt(q.shape[-1])
    q_pos = positions_of_rank(s, p, r, scheme).to(q.device)
    delta = (do * o).sum(dim=-1, keepdim=True)
    dq = torch.zeros_like(q)
    buf = torch.stack([k, v, torch.zeros_like(k), torch.zeros_like(v)]).contiguous()
    for t in range(p):
        k_pos = positions_of_rank(s, p, (r - t) % p, scheme).to(q.device)
        mask = causal_mask(q_pos, k_pos) if causal else None
        if mask is None or bool(mask.any()):
            kb, vb = buf[0], buf[1]
            prob = torch.exp(q @ kb.transpose(-1, -2) * scale - lse[..., None])
            if mask is not None:
                prob = prob.masked_fill(~mask, 0.0)
            buf[3] += prob.transpose(-1, -2) @ do
            ds = prob * (do @ vb.transpose(-1, -2) - delta)
            dq += ds @ kb * scale
            buf[2] += ds.transpose(-1, -2) @ q * scale
        if p > 1:  # pass the block on; on the last step only its gradients go home
            send = buf if t < p - 1 else buf[2:].contiguous()
            recv = torch.empty_like(send)
            _exchange(send, recv, "backward", True, group)
            buf = recv
    dk, dv = (buf[0], buf[1]) if p > 1 else (buf[2], buf[3])
    return dq, dk, dv


class _RingAttention(torch.autograd.Function):
    """Ring attention with its distributed, recompute-based backward."""

    @staticmethod
    def forward(ctx, q, k, v, causal, scheme, work, group):  # noqa: ANN001, ANN205
        o, lse = _ring_forward(q, k, v, causal, scheme, work, group)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.scheme, ctx.work, ctx.group = causal, scheme, work, group
        return o

    @staticmethod
    def backward(ctx, do):  # noqa: ANN001, ANN205
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = _ring_backward(q, k, v, o, lse, do.contiguous(), ctx.causal, ctx.scheme,
                                    ctx.work, ctx.group)
        return dq, dk, dv, None, None, None, None


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                   scheme: str = "zigzag", work: RingWork | None = None,
                   group: Group = None) -> torch.Tensor:
    """Attention of this rank's queries over the whole sequence, with K/V passed around a ring.

    ``q``, ``k``, ``v``: this rank's tokens, shape (..., s/p, d), laid out by ``scheme`` (see
    :func:`shard`). Step t = 0 … p − 1: the rank holds the K/V block that started on rank
    (r − t) mod p; it posts isend of that block to rank r + 1 and irecv of the next one from
    rank r − 1 (not on the last step), computes the partial result of its queries against the
    block it holds (skipping it if the causal mask hides all of it), merges it with
    :func:`merge_partials`, then waits for the transfer. Each rank sends p − 1 K/V blocks.

    The ring is the ranks of ``group`` (the context-parallel group of a
    :class:`labutils.parallel.grid.RankGrid`; default: the whole world), in group-rank order.

    Returns this rank's output (..., s/p, d), equal to the matching rows of ordinary attention.
    Differentiable: ``backward`` runs a second ring (:func:`_ring_backward`) and gives each
    rank the gradients of its own q, k, v.
    """
    if not dist.is_initialized():
        raise RuntimeError("no default process group: call ring_attention inside a worker run "
                           "by labutils.parallel.launch")
    scheme = check_scheme(scheme)
    if k.shape != v.shape or q.shape != k.shape:
        raise ValueError(f"q, k and v must have the same shape (..., s/p, d), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    work = work if work is not None else RingWork()
    return _RingAttention.apply(q, k, v, causal, scheme, work, group)
