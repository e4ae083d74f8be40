"""Tensor parallelism on real ranks, checked against one process (Chapter 6).

:class:`TPCase` names one comparison (a column or row linear, the MLP, attention or a whole
block, built from ``Block(cfg)`` with random weights); :func:`tp_worker` runs it on each rank
of a :func:`labutils.parallel.launch` group (with or without sequence parallelism), and
:func:`max_errors` reassembles the shards and measures the distance to :func:`reference_run`,
the single process. :func:`dtensor_mlp_worker` runs the same MLP through PyTorch's own DTensor
``parallelize_module``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from labutils.nn.gpt import Block
from labutils.parallel import comm_log
from labutils.parallel.grid import rank_device
from labutils.parallel.harness import gradients
from labutils.parallel.tensor.layers import (ColumnParallelLinear, RowParallelLinear, TPAttention,
                                             TPBlock, TPMLP, param_count, param_layout,
                                             shard_rows, unshard)


def _tp() -> tuple[int, int]:
    return dist.get_rank(), dist.get_world_size()


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
