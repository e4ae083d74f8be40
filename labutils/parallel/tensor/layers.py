"""Tensor-parallel layers: the shared GPT's linears, MLP, attention and block split over ranks.

Chapter 6. Every rank of a tensor-parallel group of size t holds a slice of each weight matrix
(Shoeybi et al. 2019, Sec. 3):

* :class:`ColumnParallelLinear` keeps rows ``out/t`` of ``W`` (PyTorch stores ``W`` as
  (out, in), so a *column* split of the math ``Y = X·Wᵀ`` is a row split of the tensor): every
  rank sees the whole input and produces its own slice of the output features;
* :class:`RowParallelLinear` keeps columns ``in/t`` of ``W``: every rank multiplies its slice of
  the input features and the partial outputs are **summed** (an all-reduce).

The communication between them is :mod:`labutils.parallel.tensor.comm`. :func:`param_layout`
and :func:`unshard` rebuild full gradients from the ranks' shards.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from labutils.nn.gpt import MLP, Block, CausalSelfAttention, apply_rope
from labutils.parallel.tensor.comm import Group, enter_tp, exit_tp

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
