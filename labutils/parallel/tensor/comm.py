"""Tensor parallelism's communication: Megatron's conjugate operators f and g, and their
sequence-parallel pair (Chapter 6).

Column then row (MLP: ``fc_in`` then ``fc_out``; attention: Q, K, V then ``wo``, each rank a
subset of heads) needs no communication in between: one all-reduce in forward (operator *g*) and
one in backward (operator *f*) per sub-block, the two conjugate operators of Shoeybi et al.
2019, Fig. 3:

* :class:`CopyToTP` (f): identity forward, all-reduce backward;
* :class:`ReduceFromTP` (g): all-reduce forward, identity backward.

Sequence parallelism (Korthikanti et al. 2022, Sec. 4.2.2) shards the activations *between*
those regions (LayerNorm, residual adds, dropout) along the sequence, and replaces each
all-reduce by an all-gather + reduce-scatter pair of the same total volume:

* :class:`GatherFromSP` (the paper's g): all-gather forward, reduce-scatter backward;
* :class:`ReduceScatterToSP` (ḡ): reduce-scatter forward, all-gather backward.

The collectives are the ring ones built from send/recv in chapter 5
(:mod:`labutils.parallel.collectives`) and run in the tensor-parallel group (default: the
world); each records itself (kind, direction, full elements) in the comm log
(:mod:`labutils.parallel.comm_log`), and the ring records the bytes each rank really sends.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from labutils.parallel import comm_log
from labutils.parallel.collectives import ring_all_gather, ring_all_reduce, ring_reduce_scatter

Group = dist.ProcessGroup | None  # the tensor-parallel group; None: the whole world


def _record(kind: str, direction: str, x: torch.Tensor, group: Group) -> None:
    """Log one collective of the full (unsharded) tensor ``x`` in the open comm logs."""
    comm_log.record(kind, x.numel(), x.element_size(), dist.get_world_size(group), direction)


def all_reduce(x: torch.Tensor, direction: str, group: Group = None) -> torch.Tensor:
    """Sum ``x`` over the group (ring, from send/recv) and return it as a new tensor."""
    out = x.contiguous().clone()
    _record("all_reduce", direction, out, group)
    if dist.get_world_size(group) > 1:
        ring_all_reduce(out, group)
    return out


def all_gather_seq(x: torch.Tensor, direction: str, group: Group = None) -> torch.Tensor:
    """(B, T/t, C) sequence shards -> (B, T, C), ranks in order along the sequence."""
    B, Ts, C = x.shape
    t = dist.get_world_size(group)
    comm_log.record("all_gather", B * Ts * t * C, x.element_size(), t, direction)
    if t == 1:
        return x.clone()
    flat = ring_all_gather(x.transpose(0, 1).contiguous(), group)  # (t·Ts·B·C,) sequence-major
    return flat.view(t * Ts, B, C).transpose(0, 1).contiguous()


def reduce_scatter_seq(x: torch.Tensor, direction: str, group: Group = None) -> torch.Tensor:
    """(B, T, C) partial sums -> this rank's (B, T/t, C) sequence shard of their sum."""
    B, T, C = x.shape
    t = dist.get_world_size(group)
    if T % t:
        raise ValueError(f"sequence length {T} must be divisible by the TP degree {t}")
    _record("reduce_scatter", direction, x, group)
    if t == 1:
        return x.clone()
    chunk = ring_reduce_scatter(x.transpose(0, 1).contiguous(), group)  # (T/t·B·C,)
    return chunk.view(T // t, B, C).transpose(0, 1).contiguous()


# ----------------------------------------------------------------------------------------------
# The conjugate operators (autograd Functions)
# ----------------------------------------------------------------------------------------------


class CopyToTP(torch.autograd.Function):
    """Megatron's f: identity in forward, all-reduce of the input gradient in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: Group = None) -> torch.Tensor:  # noqa: D102
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return all_reduce(grad, "backward", ctx.group), None


class ReduceFromTP(torch.autograd.Function):
    """Megatron's g: all-reduce (sum of partial outputs) in forward, identity in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: Group = None) -> torch.Tensor:  # noqa: D102
        ctx.group = group
        return all_reduce(x, "forward", group)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return grad, None


class GatherFromSP(torch.autograd.Function):
    """Korthikanti's g: all-gather of sequence shards in forward, reduce-scatter in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: Group = None) -> torch.Tensor:  # noqa: D102
        ctx.group = group
        return all_gather_seq(x, "forward", group)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return reduce_scatter_seq(grad, "backward", ctx.group), None


class ReduceScatterToSP(torch.autograd.Function):
    """Korthikanti's ḡ: reduce-scatter to sequence shards in forward, all-gather in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: Group = None) -> torch.Tensor:  # noqa: D102
        ctx.group = group
        return reduce_scatter_seq(x, "forward", group)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return all_gather_seq(grad, "backward", ctx.group), None


def enter_tp(x: torch.Tensor, sequence_parallel: bool, group: Group = None) -> torch.Tensor:
    """Into a tensor-parallel region: f (TP) or the all-gather g (TP + SP)."""
    return GatherFromSP.apply(x, group) if sequence_parallel else CopyToTP.apply(x, group)


def exit_tp(x: torch.Tensor, sequence_parallel: bool, group: Group = None) -> torch.Tensor:
    """Out of a tensor-parallel region: all-reduce g (TP) or reduce-scatter ḡ (TP + SP)."""
    return ReduceScatterToSP.apply(x, group) if sequence_parallel else ReduceFromTP.apply(x, group)
