"""ZeRO on real ranks (Chapters 4 and 5): train the shared GPT with each stage of
:class:`labutils.parallel.data.zero.ZeroEngine`, with PyTorch's DDP and with FSDP2, and compare
with one process.

``comm_log.recording(wrap_torch=True)`` (:mod:`labutils.parallel.comm_log`) wraps the
``torch.distributed`` collectives and records what each call moves; :func:`train_zero` (a
worker for :func:`labutils.parallel.launch`) returns losses, parameters, the bytes each rank
holds (found by walking the tensors it holds) and the communication per step.
:func:`train_fsdp2` does the same with PyTorch's own FSDP2 (``fully_shard``), and
:func:`train_ddp` with PyTorch's DDP.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from labutils.memory import zero_comm_volume
from labutils.model import TransformerConfig
from labutils.parallel import comm_log
from labutils.parallel.data.zero import (OPTIMIZERS, RECIPE_OF, HeldBytes, ZeroEngine,
                                         _storage_bytes, predicted_comm_elements,
                                         predicted_held_bytes)
from labutils.parallel.grid import GridShape, RankGrid, rank_device
from labutils.parallel.harness import build_model

# ----------------------------------------------------------------------------------------------
# Data, and the workers that launch() runs
# ----------------------------------------------------------------------------------------------


def global_batch(cfg: TransformerConfig, step: int, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic global batch of ``step``: token ids (batch, T) and next-token targets."""
    gen = torch.Generator().manual_seed(seed * 100_003 + step)
    tokens = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len + 1), generator=gen)
    return tokens[:, :-1], tokens[:, 1:]


@dataclass(frozen=True)
class ZeroRun:
    """One training run's settings (shared by every rank and by the single-process reference)."""

    cfg: TransformerConfig
    steps: int = 3
    micro_batch: int = 2  # sequences per rank per step
    lr: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "micro_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive and finite, got {self.lr!r}")


def local_batch(run: ZeroRun, step: int, rank: int, world: int,
                device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s ``run.micro_batch`` sequences of step ``step``'s global batch."""
    idx, tgt = global_batch(run.cfg, step, run.micro_batch * world, run.seed)
    sl = slice(rank * run.micro_batch, (rank + 1) * run.micro_batch)
    return idx[sl].to(device), tgt[sl].to(device)


def _optimizer(params: Iterator[torch.Tensor], run: ZeroRun) -> torch.optim.Optimizer:
    return (torch.optim.Adam(params, lr=run.lr) if run.optimizer == "adam"
            else torch.optim.SGD(params, lr=run.lr))


def _comm_summary(log: comm_log.CommLog) -> dict:
    """One step's recorded collectives: volume (elements, bytes), ring bytes sent, volume by
    collective, number of calls, and volume by "<collective> over <group size>"."""
    return {"volume_elements": log.volume_elements(), "volume_bytes": log.volume_bytes(),
            "ring_bytes_sent": log.ring_bytes_sent(), "by_op": log.by_op(),
            "calls": len(log.calls), "by_group": log.by_group()}


def train_reference(run: ZeroRun, world_size: int) -> dict:
    """Single process, whole global batch (micro_batch × world_size), torch.optim. No launch."""
    model = build_model(run.cfg, run.seed)
    opt = _optimizer(model.parameters(), run)
    losses = []
    for step in range(run.steps):
        idx, tgt = global_batch(run.cfg, step, run.micro_batch * world_size, run.seed)
        opt.zero_grad(set_to_none=True)
        _, loss = model(idx, tgt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"losses": losses, "params": params}


def train_zero(run: ZeroRun, stage: int, shape: GridShape | None = None) -> dict:
    """Worker: train with :class:`ZeroEngine` at ``stage``; measure bytes held and communicated.

    Returns (per rank) ``losses`` (this rank's micro-batch loss per step, nats), ``params``
    (final, flattened), ``held`` (bytes after the last step, by category), ``predicted``
    (:func:`predicted_held_bytes`), ``comm`` (per step: volume in elements and bytes, ring bytes
    sent, volume by collective), ``predicted_comm_elements``, ``peak_gathered_bytes`` and
    ``padding_elements``. With a grid ``shape``, the states are sharded over this rank's
    data-parallel group of a :class:`labutils.parallel.grid.RankGrid` (each group trains on
    its own), else over the whole world.
    """
    group, device = None, rank_device()
    rank, world = dist.get_rank(), dist.get_world_size()
    if shape is not None:
        grid = RankGrid(shape)
        group, rank, world = grid.group("dp"), grid.rank("dp"), grid.size("dp")
    model = build_model(run.cfg, run.seed, device)
    numels = [p.numel() for p in model.parameters()]
    engine = ZeroEngine(model, stage, optimizer=run.optimizer, lr=run.lr, group=group)
    losses, comm = [], []
    for step in range(run.steps):
        idx, tgt = local_batch(run, step, rank, world, device)
        with comm_log.recording(wrap_torch=True) as cc:
            losses.append(engine.step(idx, tgt))
        comm.append(_comm_summary(cc))
    held = engine.held_bytes().as_dict()
    return {"losses": losses, "params": engine.full_parameters().cpu(), "held": held,
            "predicted": predicted_held_bytes(numels, stage=stage, dp=world, optimizer=run.optimizer),
            "comm": comm, "predicted_comm_elements": predicted_comm_elements(numels, stage=stage, dp=world),
            "paper_comm_elements": zero_comm_volume(sum(numels), stage),
            "peak_gathered_bytes": engine.peak_gathered_bytes,
            "padding_elements": engine.padding_elements}


def train_ddp(run: ZeroRun) -> dict:
    """Worker: PyTorch's DistributedDataParallel with torch.optim, the plain-DDP reference."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    rank, world, device = dist.get_rank(), dist.get_world_size(), rank_device()
    model = DDP(build_model(run.cfg, run.seed, device))
    opt = _optimizer(model.parameters(), run)
    losses = []
    for step in range(run.steps):
        idx, tgt = local_batch(run, step, rank, world, device)
        opt.zero_grad(set_to_none=True)
        _, loss = model(idx, tgt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    params = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()])
    return {"losses": losses, "params": params.cpu()}


def train_fsdp2(run: ZeroRun, **shard_kwargs: object) -> dict:
    """Worker: PyTorch FSDP2 (``fully_shard(..., **shard_kwargs)`` on each block and the root)
    with torch.optim (Adam or SGD, as ``run`` says).

    Returns ``losses``, ``params`` (full, gathered, flattened, on the CPU), ``held`` (local
    shards of parameters, gradients and Adam's exp_avg/exp_avg_sq, walked as for our engine;
    Adam's scalar ``step`` counters are left out and reported as ``optimizer_step_bytes``),
    ``comm`` per step (:func:`_comm_summary`), ``local_numel`` (elements of parameters this
    rank holds), ``device`` (where its shards live) and ``root_numel``.
    """
    from torch.distributed.fsdp import fully_shard

    rank, world, device = dist.get_rank(), dist.get_world_size(), rank_device()
    model = build_model(run.cfg, run.seed, device)
    for block in model.blocks:
        fully_shard(block, **shard_kwargs)
    fully_shard(model, **shard_kwargs)
    opt = _optimizer(model.parameters(), run)
    losses, comm = [], []
    for step in range(run.steps):
        idx, tgt = local_batch(run, step, rank, world, device)
        with comm_log.recording(wrap_torch=True) as cc:
            opt.zero_grad(set_to_none=True)
            _, loss = model(idx, tgt)
            loss.backward()
            opt.step()
        losses.append(loss.item())
        comm.append(_comm_summary(cc))
    seen: set[int] = set()
    params = list(model.parameters())
    held = HeldBytes(
        _storage_bytes(iter(params), seen),
        _storage_bytes((p.grad for p in params), seen),
        _storage_bytes((t for st in opt.state.values() for k, t in st.items() if k != "step"), seen),
    )
    step_bytes = sum(st["step"].numel() * st["step"].element_size()
                     for st in opt.state.values() if "step" in st)
    full = torch.cat([p.full_tensor().detach().reshape(-1) for p in params]).cpu()
    root_numel = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("blocks."))
    return {"losses": losses, "params": full, "held": held.as_dict(), "comm": comm,
            "optimizer_step_bytes": step_bytes, "root_numel": root_numel,
            "local_numel": sum(p.to_local().numel() for p in params),
            "device": str(params[0].to_local().device)}


def compare_stages(run: ZeroRun, stages: tuple[int, ...] = (0, 1, 2, 3), ddp: bool = True,
                   fsdp2: bool = True) -> dict:
    """Worker: every requested ZeRO stage, then PyTorch DDP and FSDP2, in one launch.

    One launch instead of six keeps the chapter's multi-rank runs within the notebook budget.
    Returns ``{"zero": {stage: train_zero(...)}, "ddp": ..., "fsdp2": ...}``, with timings
    (seconds per step, wall clock, this rank) under ``"step_s"``.
    """
    import time

    out: dict = {"zero": {}, "step_s": {}}
    for stage in stages:
        t0 = time.perf_counter()
        out["zero"][stage] = train_zero(run, stage)
        out["step_s"][f"zero-{stage}"] = (time.perf_counter() - t0) / run.steps
        dist.barrier()
    if ddp:
        t0 = time.perf_counter()
        out["ddp"] = train_ddp(run)
        out["step_s"]["ddp"] = (time.perf_counter() - t0) / run.steps
    if fsdp2:
        t0 = time.perf_counter()
        out["fsdp2"] = train_fsdp2(run)
        out["step_s"]["fsdp2"] = (time.perf_counter() - t0) / run.steps
    return out


def stage_table(out: list[dict], reference: dict, optimizer: str = "adam") -> list[dict]:
    """Rows for the chapter's table: per stage, predicted vs measured bytes held and moved.

    ``out`` is :func:`compare_stages`'s result (one dict per rank) and ``reference`` is
    :func:`train_reference`'s. Bytes are per rank (rank 0; the test checks every rank);
    ``max |Δ loss|`` and ``max |Δ param|`` compare with the single process.
    """
    from labutils.memory import model_state_bytes

    world = len(out)
    n_params = int(reference["params"].numel())
    rows = []
    for stage, r in out[0]["zero"].items():
        losses = [sum(o["zero"][stage]["losses"][i] for o in out) / world
                  for i in range(len(reference["losses"]))]
        pred = model_state_bytes(n_params, recipe=RECIPE_OF[optimizer], zero_stage=stage, dp=world)
        rows.append({
            "stage": stage,
            "predicted held B": pred["total"],
            "measured held B": r["held"]["total"],
            "predicted comm (elements)": int(zero_comm_volume(n_params, stage)),
            "measured comm (elements)": r["comm"][-1]["volume_elements"],
            "max |Δ loss|": max(abs(a - b) for a, b in zip(losses, reference["losses"])),
            "max |Δ param|": max((o["zero"][stage]["params"] - reference["params"]).abs().max().item()
                                 for o in out),
        })
    return rows
