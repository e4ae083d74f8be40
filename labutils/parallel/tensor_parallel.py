"""Tensor parallelism (Megatron-LM) and sequence parallelism, on real torch.distributed ranks.

Chapter 6. Every rank of a tensor-parallel group of size t holds a slice of each weight matrix
(Shoeybi et al. 2019, Sec. 3):

* :class:`ColumnParallelLinear` keeps rows ``out/t`` of ``W`` (PyTorch stores ``W`` as
  (out, in), so a *column* split of the math ``Y = X·Wᵀ`` is a row split of the tensor): every
  rank sees the whole input and produces its own slice of the output features;
* :class:`RowParallelLinear` keeps columns ``in/t`` of ``W``: every rank multiplies its slice of
  the input features and the partial outputs are **summed** (an all-reduce).

Column then row (MLP: ``fc_in`` then ``fc_out``; attention: Q, K, V then ``wo``, each rank a
subset of heads) needs no communication in between: one all-reduce in forward (operator *g*) and
one in backward (operator *f*) per sub-block, the two conjugate operators of the paper's Fig. 3:

* :class:`CopyToTP` (f): identity forward, all-reduce backward;
* :class:`ReduceFromTP` (g): all-reduce forward, identity backward.

Sequence parallelism (Korthikanti et al. 2022, Sec. 4.2.2) shards the activations *between*
those regions (LayerNorm, residual adds, dropout) along the sequence, and replaces each
all-reduce by an all-gather + reduce-scatter pair of the same total volume:

* :class:`GatherFromSP` (the paper's g): all-gather forward, reduce-scatter backward;
* :class:`ReduceScatterToSP` (ḡ): reduce-scatter forward, all-gather backward.

The collectives are the ring ones built from send/recv in chapter 5
(:mod:`labutils.parallel.collectives`), so :func:`labutils.parallel.comm_log.recording`
measures the bytes each rank really sends and records every collective (kind, direction,
elements).
Workers (``*_worker``) run under :func:`labutils.parallel.launch.launch`; the module-level
:func:`reference_block_run` is the single-process reference they are tested against.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from labutils.nn.gpt import MLP, Block, CausalSelfAttention, apply_rope
from labutils.parallel import comm_log
from labutils.parallel.collectives import ring_all_gather, ring_all_reduce, ring_reduce_scatter
from labutils.parallel.grid import rank_device
from labutils.parallel.harness import gradients

Group = dist.ProcessGroup | None  # the tensor-parallel group; None: the whole world


def _record(kind: str, direction: str, x: torch.Tensor, group: Group) -> None:
    """Log one collective of the full (unsharded) tensor ``x`` in the open comm logs."""
    comm_log.record(kind, x.numel(), x.element_size(), dist.get_world_size(group), direction)


def _tp() -> tuple[int, int]:
    return dist.get_rank(), dist.get_world_size()


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


# ----------------------------------------------------------------------------------------------
# Sharding a full layer
# ----------------------------------------------------------------------------------------------


def shard_rows(full: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of dim 0 (``full.shape[0]`` must divide by ``world``)."""
    if full.shape[0] % world:
        raise ValueError(f"dimension {full.shape[0]} must be divisible by the TP degree {world}")
    n = full.shape[0] // world
    return full[rank * n:(rank + 1) * n].detach().clone()


class ColumnParallelLinear(nn.Module):
    """The output features of ``full`` split over ranks: W (out/t, in), bias (out/t).

    ``local(x)`` is the matmul alone (x: full input features); ``forward`` first applies the
    entering operator (f, or the all-gather with sequence parallelism). The output stays split.
    """

    def __init__(self, full: nn.Linear, rank: int, world: int, sequence_parallel: bool = False,
                 group: Group = None):
        super().__init__()
        self.sequence_parallel, self.group = sequence_parallel, group
        self.weight = nn.Parameter(shard_rows(full.weight, rank, world))  # (out/t, in)
        self.bias = (nn.Parameter(shard_rows(full.bias, rank, world))
                     if full.bias is not None else None)

    def local(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)  # (..., out/t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local(enter_tp(x, self.sequence_parallel, self.group))


class RowParallelLinear(nn.Module):
    """The input features of ``full`` split over ranks: W (out, in/t); the bias is replicated
    and added once, after the partial outputs are summed (g, or ḡ with sequence parallelism)."""

    def __init__(self, full: nn.Linear, rank: int, world: int, sequence_parallel: bool = False,
                 group: Group = None):
        super().__init__()
        self.sequence_parallel, self.group = sequence_parallel, group
        self.weight = nn.Parameter(shard_rows(full.weight.t(), rank, world).t().contiguous())
        self.bias = nn.Parameter(full.bias.detach().clone()) if full.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in/t)
        y = exit_tp(F.linear(x, self.weight), self.sequence_parallel, self.group)  # (..., out), summed
        return y + self.bias if self.bias is not None else y


class TPMLP(nn.Module):
    """:class:`labutils.nn.gpt.MLP` split column (fc_in, fc_gate) then row (fc_out)."""

    def __init__(self, full: MLP, rank: int, world: int, sequence_parallel: bool = False,
                 group: Group = None):
        super().__init__()
        self.sequence_parallel, self.swiglu, self.group = sequence_parallel, full.swiglu, group
        sp = sequence_parallel
        self.fc_in = ColumnParallelLinear(full.fc_in, rank, world, sp, group)
        if self.swiglu:
            self.fc_gate = ColumnParallelLinear(full.fc_gate, rank, world, sp, group)
        self.fc_out = RowParallelLinear(full.fc_out, rank, world, sp, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = enter_tp(x, self.sequence_parallel, self.group)  # one f (or all-gather): fc_in, fc_gate
        if self.swiglu:
            h = F.silu(self.fc_gate.local(x)) * self.fc_in.local(x)  # (B, T, F/t)
        else:
            h = F.gelu(self.fc_in.local(x))  # (B, T, F/t)
        return self.fc_out(h)  # (B, T, C) summed, or (B, T/t, C) with SP


class TPAttention(nn.Module):
    """:class:`labutils.nn.gpt.CausalSelfAttention` with heads split over ranks: rank r keeps
    heads r·nh/t … (r+1)·nh/t − 1 of Q, K, V (column split) and the matching input slice of
    ``wo`` (row split). The attention itself needs no communication."""

    def __init__(self, full: CausalSelfAttention, rank: int, world: int,
                 sequence_parallel: bool = False, group: Group = None):
        super().__init__()
        if full.n_heads % world:
            raise ValueError(f"n_heads ({full.n_heads}) must be divisible by the TP degree {world}")
        self.sequence_parallel, self.group = sequence_parallel, group
        self.n_heads, self.head_dim = full.n_heads // world, full.head_dim  # local heads
        sp = sequence_parallel
        self.wq = ColumnParallelLinear(full.wq, rank, world, sp, group)
        self.wk = ColumnParallelLinear(full.wk, rank, world, sp, group)
        self.wv = ColumnParallelLinear(full.wv, rank, world, sp, group)
        self.wo = RowParallelLinear(full.wo, rank, world, sp, group)
        self.use_rope = full.use_rope
        if self.use_rope:
            self.register_buffer("rope_cos", full.rope_cos.clone(), persistent=False)
            self.register_buffer("rope_sin", full.rope_sin.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = enter_tp(x, self.sequence_parallel, self.group)  # (B, T, C): one f for Q, K, V
        B, T, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh/t, T, hs)

        q, k, v = heads(self.wq.local(x)), heads(self.wk.local(x)), heads(self.wv.local(x))
        if self.use_rope:
            q = apply_rope(q, self.rope_cos[:T], self.rope_sin[:T])
            k = apply_rope(k, self.rope_cos[:T], self.rope_sin[:T])
        scores = (q @ k.transpose(-2, -1)) / self.head_dim ** 0.5  # (B, nh/t, T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        z = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v  # (B, nh/t, T, hs)
        z = z.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)  # (B, T, C/t)
        return self.wo(z)


class TPBlock(nn.Module):
    """:class:`labutils.nn.gpt.Block` with TP attention and MLP; the norms are replicated.

    With ``sequence_parallel`` the block's input and output are sequence shards (B, T/t, C),
    and the norms and residual adds run on them.
    """

    def __init__(self, full: Block, rank: int, world: int, sequence_parallel: bool = False,
                 group: Group = None):
        super().__init__()
        self.norm1 = copy.deepcopy(full.norm1)
        self.attn = TPAttention(full.attn, rank, world, sequence_parallel, group)
        self.norm2 = copy.deepcopy(full.norm2)
        self.mlp = TPMLP(full.mlp, rank, world, sequence_parallel, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ----------------------------------------------------------------------------------------------
# Parameter layouts: how to rebuild full gradients from shards
# ----------------------------------------------------------------------------------------------


def param_layout(module: nn.Module, sequence_parallel: bool = False) -> dict[str, str]:
    """For each parameter name: ``"col"`` (shards stack along dim 0), ``"row"`` (along dim 1),
    ``"replicated"`` (same full tensor, same gradient on every rank), or ``"partial"``
    (replicated, but under sequence parallelism each rank's gradient covers only its sequence
    shard: the full gradient is the sum over ranks, which Megatron all-reduces)."""
    layout: dict[str, str] = {}
    rep = "partial" if sequence_parallel else "replicated"
    for mod_name, mod in module.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(mod, ColumnParallelLinear):
                layout[name] = "col"
            elif isinstance(mod, RowParallelLinear):
                layout[name] = "row" if p_name == "weight" else rep
            else:
                layout[name] = rep
    return layout


def unshard(per_rank: list[dict[str, torch.Tensor]], layout: dict[str, str]) -> dict[str, torch.Tensor]:
    """Full tensors from every rank's shards (``per_rank[r][name]``), following ``layout``."""
    full = {}
    for name, kind in layout.items():
        parts = [d[name] for d in per_rank]
        if kind == "col":
            full[name] = torch.cat(parts, dim=0)
        elif kind == "row":
            full[name] = torch.cat(parts, dim=1)
        elif kind == "partial":
            full[name] = torch.stack(parts).sum(0)
        else:
            full[name] = parts[0]
    return full


def param_count(module: nn.Module) -> int:
    """Parameters this rank holds (elements)."""
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------------------
# Single-process reference and the workers
# ----------------------------------------------------------------------------------------------

PARTS = ("column", "row", "mlp", "attn", "block")


@dataclass(frozen=True)
class TPCase:
    """One comparison: a full layer built from ``Block(cfg)`` with ``seed``, input (batch, T, C)."""

    cfg: object  # labutils.model.TransformerConfig
    part: str = "block"  # one of PARTS
    batch: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")


def _full_module(case: TPCase) -> nn.Module:
    torch.manual_seed(case.seed)
    block = Block(case.cfg)
    for p in block.parameters():  # random biases and norm weights too, so that every one is tested
        with torch.no_grad():
            p.add_(0.1 * torch.randn_like(p))
    return {"column": block.mlp.fc_in, "row": block.mlp.fc_out, "mlp": block.mlp,
            "attn": block.attn, "block": block}[case.part]


def _inputs(case: TPCase) -> tuple[torch.Tensor, torch.Tensor]:
    """Input x and loss weights w (same shape as the output): loss = (out · w).sum()."""
    g = torch.Generator().manual_seed(case.seed + 1)
    d_in = case.cfg.ffn_dim if case.part == "row" else case.cfg.d_model
    d_out = case.cfg.ffn_dim if case.part == "column" else case.cfg.d_model
    T = case.cfg.seq_len
    x = torch.randn(case.batch, T, d_in, generator=g)
    w = torch.randn(case.batch, T, d_out, generator=g) / (case.batch * T)
    return x, w


def reference_run(case: TPCase) -> dict:
    """Single process: output, loss, input gradient and parameter gradients of the full layer."""
    module = _full_module(case)
    x, w = _inputs(case)
    x.requires_grad_(True)
    out = module(x)
    loss = (out * w).sum()
    loss.backward()
    return {"out": out.detach(), "loss": loss.item(), "x_grad": x.grad.detach(),
            "grads": {n: p.grad.detach().clone() for n, p in module.named_parameters()},
            "param_count": param_count(module)}


def _tp_module(case: TPCase, full: nn.Module, rank: int, world: int, sp: bool) -> nn.Module:
    if case.part == "column":
        return ColumnParallelLinear(full, rank, world, sp)
    if case.part == "row":
        return RowParallelLinear(full, rank, world, sp)
    return {"mlp": TPMLP, "attn": TPAttention, "block": TPBlock}[case.part](full, rank, world, sp)


def tp_worker(case: TPCase, sequence_parallel: bool = False) -> dict:
    """One rank: build the TP (or TP + SP) layer from the same full weights, run forward and
    backward of ``loss = (out · w).sum()``, and return shards of everything plus the comm counted.

    Inputs and outputs: TP without SP, the full x on every rank (column: full output is the
    concatenation of ranks' outputs; row: x is split along features). With SP, x, the output
    and the loss are this rank's sequence shard (the total loss is the sum over ranks).
    """
    rank, world = _tp()
    sp, device = sequence_parallel, rank_device()
    module = _tp_module(case, _full_module(case).to(device), rank, world, sp)
    x, w = (t.to(device) for t in _inputs(case))
    T = case.cfg.seq_len
    if case.part == "row":
        x = shard_rows(x.transpose(0, 2), rank, world).transpose(0, 2).contiguous()  # (B, T, F/t)
    if sp:  # sequence shards of the input (not for row, whose input comes from a TP region)
        if case.part != "row":
            x = x[:, rank * T // world:(rank + 1) * T // world].contiguous()
        if case.part != "column":  # outputs leave the TP region as sequence shards
            w = w[:, rank * T // world:(rank + 1) * T // world]
    if case.part == "column":
        w = shard_rows(w.transpose(0, 2), rank, world).transpose(0, 2)  # this rank's features
    x.requires_grad_(True)
    with comm_log.recording() as log:
        out = module(x)
        loss = (out * w).sum()
        loss.backward()
    return {"rank": rank, "out": out.detach().cpu(), "loss": loss.item(),
            "x_grad": x.grad.detach().cpu(), "grads": gradients(module),
            "layout": param_layout(module, sp), "comm": log, "calls": log.calls,
            "sent_bytes": log.sent_bytes(), "param_count": param_count(module)}


def gather_results(case: TPCase, per_rank: list[dict], sequence_parallel: bool = False) -> dict:
    """Reassemble rank results into the reference's shapes (output, loss, x_grad, grads)."""
    part, sp = case.part, sequence_parallel
    outs, xg = [r["out"] for r in per_rank], [r["x_grad"] for r in per_rank]
    if part == "column":
        out = torch.cat(outs, dim=-1)
        loss = sum(r["loss"] for r in per_rank)
    elif sp:
        out = torch.cat(outs, dim=1)
        loss = sum(r["loss"] for r in per_rank)
    else:
        out, loss = outs[0], per_rank[0]["loss"]
    if part == "row":
        x_grad = torch.cat(xg, dim=-1)
    elif sp:
        x_grad = torch.cat(xg, dim=1)
    else:
        x_grad = xg[0]
    grads = unshard([r["grads"] for r in per_rank], per_rank[0]["layout"])
    return {"out": out, "loss": loss, "x_grad": x_grad, "grads": grads}


def max_errors(case: TPCase, per_rank: list[dict], sequence_parallel: bool = False) -> dict:
    """Max absolute difference from the single-process reference, per quantity."""
    ref, got = reference_run(case), gather_results(case, per_rank, sequence_parallel)
    return {
        "out": (got["out"] - ref["out"]).abs().max().item(),
        "loss": abs(got["loss"] - ref["loss"]),
        "x_grad": (got["x_grad"] - ref["x_grad"]).abs().max().item(),
        "grads": max((got["grads"][n] - g).abs().max().item() for n, g in ref["grads"].items()),
    }


# ----------------------------------------------------------------------------------------------
# PyTorch's own engine: DTensor's parallelize_module (ColwiseParallel / RowwiseParallel)
# ----------------------------------------------------------------------------------------------


def dtensor_mlp_worker(case: TPCase) -> dict:
    """The same MLP through ``torch.distributed.tensor.parallel.parallelize_module`` on a CPU
    device mesh; returns the output and this rank's (local) weight gradients."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel,
                                                   parallelize_module)

    rank, world = _tp()
    mesh = init_device_mesh("cpu", (world,))
    mlp = parallelize_module(_full_module(TPCase(case.cfg, "mlp", case.batch, case.seed)), mesh,
                             {"fc_in": ColwiseParallel(), "fc_out": RowwiseParallel()})
    x, w = _inputs(TPCase(case.cfg, "mlp", case.batch, case.seed))
    out = mlp(x)
    (out * w).sum().backward()
    return {"out": out.detach(),
            "fc_in.weight": mlp.fc_in.weight.grad.to_local().clone(),
            "fc_out.weight": mlp.fc_out.weight.grad.to_local().clone()}
