"""Ring attention on real ranks, checked against attention on one process (Chapter 8)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from labutils.parallel import comm_log
from labutils.parallel.context.ring import RingWork, ring_attention
from labutils.parallel.context.sharding import shard, unshard
from labutils.parallel.grid import GridShape, RankGrid, rank_device

def ring_attention_worker(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                          scheme: str = "zigzag", grad_out: torch.Tensor | None = None,
                          shape: GridShape | None = None) -> dict:
    """Worker for :func:`labutils.parallel.launch`: take this rank's shard of the full q, k, v
    (shape (..., s, d)), run :func:`ring_attention`, return its output shard and statistics.

    With ``grad_out`` (the upstream gradient of the full output), also run the backward and
    return this rank's shards of dq, dk, dv. With a grid ``shape``, the ring is this rank's
    context-parallel group of a :class:`labutils.parallel.grid.RankGrid` (every group computes
    the same attention), and ``cp_rank`` says which shard the rank holds; else the whole world.
    """
    group = None
    p, r, device = dist.get_world_size(), dist.get_rank(), rank_device()
    if shape is not None:
        grid = RankGrid(shape)
        group, p, r = grid.group("cp"), grid.size("cp"), grid.rank("cp")
    work = RingWork()
    grad = grad_out is not None
    qs, ks, vs = (shard(t, p, r, scheme).to(device).detach().requires_grad_(grad)
                  for t in (q, k, v))
    with comm_log.recording() as log:
        out = ring_attention(qs, ks, vs, causal, scheme, work, group)
        if grad:
            out.backward(shard(grad_out, p, r, scheme).to(device))
    res = {"out": out.detach().cpu(), "cp_rank": r}
    if grad:
        res.update(dq=qs.grad.cpu(), dk=ks.grad.cpu(), dv=vs.grad.cpu())
    res.update(sent_bytes=log.sent_bytes("forward"), messages_sent=log.messages_sent("forward"),
               score_pairs=work.score_pairs, blocks_computed=work.blocks_computed,
               blocks_skipped=work.blocks_skipped, backward_sent_bytes=log.sent_bytes("backward"),
               kv_block_bytes=2 * ks.numel() * ks.element_size())
    return res


def run_ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, world_size: int,
                       causal: bool = False, scheme: str = "zigzag",
                       grad_out: torch.Tensor | None = None,
                       timeout_s: float = 60.0) -> tuple[torch.Tensor, list[dict]]:
    """Launch :func:`ring_attention_worker` on ``world_size`` gloo ranks; return the full output
    (reassembled with :func:`unshard`) and each rank's results (with ``grad_out``: its dq, dk,
    dv shards, to be reassembled with :func:`unshard`)."""
    from labutils.parallel.launch import launch

    res = launch(ring_attention_worker, world_size, q, k, v, causal, scheme, grad_out,
                 timeout_s=timeout_s)
    return unshard([x["out"] for x in res], scheme), res
