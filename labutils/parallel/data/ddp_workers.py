"""Data-parallel workers (Chapter 5): one step of each DDP variant against one process, step
times, timelines, a failure mid-backward, and weak/strong scaling on 1, 2, 4… ranks.

Workers (``*_worker``) run through :func:`labutils.parallel.launch`; every tensor lives on the
rank's device (:func:`labutils.parallel.grid.rank_device`).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn

from labutils.model import TransformerConfig
from labutils.parallel.data.ddp import DEFAULT_BUCKET_BYTES, VARIANTS, OverlappedDDP, wrap
from labutils.parallel.grid import rank_device
from labutils.parallel.harness import (Event, EventLog, batch_shard, build_model, gradients,
                                       make_batch)

def _check_split(global_batch: int, world: int, accum_steps: int) -> None:
    if isinstance(accum_steps, bool) or not isinstance(accum_steps, int) or accum_steps < 1:
        raise ValueError(f"accum_steps must be a positive int, got {accum_steps!r}")
    if global_batch % (world * accum_steps):
        raise ValueError(f"global_batch={global_batch} must be divisible by world_size × "
                         f"accum_steps = {world} × {accum_steps}: every micro-batch has the "
                         "same size, so the average of means is the full-batch mean")


def _train_step(ddp: nn.Module, variant: str, idx: torch.Tensor, tgt: torch.Tensor,
                accum_steps: int, log: EventLog) -> float:
    """Forward and backward on this rank's shard, then gradient sync. Returns the local loss."""
    if variant != "accumulate":
        with log.span("compute", "forward"):
            _, loss = ddp(idx, tgt)
        with log.span("compute", "backward"):
            loss.backward()
        if variant != "torch":  # torch DDP finishes its all-reduces inside backward()
            ddp.finish_gradient_synchronization()
        return loss.item()
    micro_idx, micro_tgt = idx.chunk(accum_steps), tgt.chunk(accum_steps)  # (B/p/k, T) each
    total = 0.0
    for m in range(accum_steps):
        last = m == accum_steps - 1
        ctx = ddp.no_sync() if not last else nullcontext()
        with ctx:
            with log.span("compute", f"forward {m}"):
                _, loss = ddp(micro_idx[m], micro_tgt[m])
            with log.span("compute", f"backward {m}"):
                (loss / accum_steps).backward()  # mean over micro-batches
        total += loss.item() / accum_steps
    ddp.finish_gradient_synchronization()
    return total


def ddp_gradients_worker(variant: str, cfg: TransformerConfig, global_batch: int, seed: int = 0,
                         bucket_bytes: int = DEFAULT_BUCKET_BYTES, accum_steps: int = 2,
                         record: bool = False) -> dict:
    """One training step of ``variant`` on this rank's shard of the global batch.

    Returns ``{"grads": name→averaged gradient, "loss": local loss (nats), "events": [Event],
    "allreduce_calls": collectives issued (None for torch DDP)}``; every rank's ``grads``
    should equal :func:`reference_gradients`.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    _check_split(global_batch, world, accum_steps if variant == "accumulate" else 1)
    device = rank_device()
    model = build_model(cfg, seed, device)
    log = EventLog(enabled=record)
    ddp = wrap(variant, model, bucket_bytes, log)
    idx, tgt = make_batch(cfg, global_batch, seed, device)
    dist.barrier()
    loss = _train_step(ddp, variant, batch_shard(idx, rank, world), batch_shard(tgt, rank, world),
                       accum_steps, log)
    grads = gradients(model)
    return {"grads": grads, "loss": loss, "events": list(log.events),
            "allreduce_calls": getattr(ddp, "allreduce_calls", None)}


def ddp_variants_worker(variants: list[str], cfg: TransformerConfig, global_batch: int,
                        seed: int = 0, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                        accum_steps: int = 2) -> dict[str, dict]:
    """:func:`ddp_gradients_worker` for several variants in one launch: variant → its result."""
    return {v: ddp_gradients_worker(v, cfg, global_batch, seed, bucket_bytes, accum_steps)
            for v in variants}


def ddp_step_time_worker(variant: str, cfg: TransformerConfig, per_rank_batch: int,
                         steps: int = 3, warmup: int = 1, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                         seed: int = 0) -> float:
    """Seconds per training step (forward, backward, sync, SGD update) on this rank, median of
    ``steps`` after ``warmup``. ``per_rank_batch`` sequences per rank (weak scaling holds it
    fixed; strong scaling divides a fixed global batch by the number of ranks)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    model = build_model(cfg, seed, rank_device())
    ddp = wrap(variant, model, bucket_bytes) if world > 1 else None
    # A hand-written SGD update: torch.optim's constructor imports torch._dynamo (seconds per
    # process), which would dwarf the steps being timed.
    params = [p for p in model.parameters() if p.requires_grad]
    idx, tgt = make_batch(cfg, per_rank_batch, seed + rank, rank_device())
    times = []
    for s in range(warmup + steps):
        dist.barrier()
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        if ddp is None:
            _, loss = model(idx, tgt)
            loss.backward()
        else:
            _train_step(ddp, variant, idx, tgt, 1, EventLog(enabled=False))
        with torch.no_grad():
            for p in params:
                p -= 1e-3 * p.grad  # SGD, lr = 1e-3
        dt = time.perf_counter() - t0
        if s >= warmup:
            times.append(dt)
    times.sort()
    return times[len(times) // 2]


def timeline_worker(variant: str, cfg: TransformerConfig, global_batch: int,
                    bucket_bytes: int = DEFAULT_BUCKET_BYTES, steps: int = 2,
                    seed: int = 0) -> list[Event]:
    """Run ``steps`` recorded training steps of ``variant`` and return this rank's events of the
    last one (the first warms up allocators and gloo's connections)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    _check_split(global_batch, world, 1)
    model = build_model(cfg, seed, rank_device())
    idx, tgt = make_batch(cfg, global_batch, seed, rank_device())
    idx, tgt = batch_shard(idx, rank, world), batch_shard(tgt, rank, world)
    log = EventLog(enabled=True)
    ddp = wrap(variant, model, bucket_bytes, log)
    for _ in range(steps):
        log.events.clear()
        model.zero_grad(set_to_none=True)
        dist.barrier()
        _train_step(ddp, variant, idx, tgt, 1, log)
    time.sleep(0.01)  # let the last completion callbacks land
    return list(log.events)


def fail_in_backward_worker(cfg: TransformerConfig, bad_rank: int, global_batch: int = 8) -> None:
    """Rank ``bad_rank`` raises in the middle of backward while its peers' overlapped
    all-reduces wait for it: shows that a failed rank ends the run with an error, not a hang."""
    rank, world = dist.get_rank(), dist.get_world_size()
    model = build_model(cfg)
    ddp = OverlappedDDP(model, bucket_bytes=4096)
    if rank == bad_rank:
        def boom(_param: torch.Tensor) -> None:
            raise RuntimeError(f"deliberate failure in backward on rank {bad_rank}")
        model.norm_f.weight.register_post_accumulate_grad_hook(boom)
    idx, tgt = make_batch(cfg, global_batch)
    _, loss = ddp(batch_shard(idx, rank, world), batch_shard(tgt, rank, world))
    loss.backward()
    ddp.finish_gradient_synchronization()


def scaling_worker(cfg: TransformerConfig, weak_batch: int, strong_batch: int,
                   variant: str = "overlapped", steps: int = 3) -> tuple[float, float]:
    """Step seconds on this rank for weak scaling (``weak_batch`` sequences per rank) and for
    strong scaling (``strong_batch`` sequences in all, split over the ranks)."""
    world = dist.get_world_size()
    if strong_batch % world:
        raise ValueError(f"strong_batch={strong_batch} must be divisible by the world size {world}")
    return (ddp_step_time_worker(variant, cfg, weak_batch, steps, 1),
            ddp_step_time_worker(variant, cfg, strong_batch // world, steps, 1))


def measure_scaling(cfg: TransformerConfig, world_sizes: list[int], weak_batch: int = 2,
                    strong_batch: int = 4, variant: str = "overlapped", steps: int = 3,
                    threads_per_rank: int = 1, timeout_s: float = 60.0) -> dict[str, list[dict]]:
    """Measure training-step time on 1, 2, 4… local gloo ranks, one launch per world size.

    Weak scaling: ``weak_batch`` sequences per rank; efficiency = t_1 / t_p.
    Strong scaling: ``strong_batch`` sequences in all, split over the ranks;
    efficiency = t_1 / (p·t_p). Each rank gets ``threads_per_rank`` intra-op threads (default 1:
    one core plays one GPU, and one rank is not handicapped by OpenMP threads fighting over
    busy cores). Returns ``{"weak": rows, "strong": rows}``; each row holds world_size,
    per_rank_batch, step_s (slowest rank), tokens_per_s and efficiency.
    """
    from labutils.parallel.launch import launch

    for p in world_sizes:
        if strong_batch % p:
            raise ValueError(f"strong_batch={strong_batch} must be divisible by every world "
                             f"size, got {p}")
    out: dict[str, list[dict]] = {"weak": [], "strong": []}
    for p in world_sizes:
        per_rank = launch(scaling_worker, p, cfg, weak_batch, strong_batch, variant, steps,
                          timeout_s=timeout_s, threads_per_rank=threads_per_rank)
        for i, (mode, b) in enumerate((("weak", weak_batch), ("strong", strong_batch // p))):
            step_s = max(r[i] for r in per_rank)
            out[mode].append(dict(world_size=p, per_rank_batch=b, step_s=step_s,
                                  tokens_per_s=p * b * cfg.seq_len / step_s))
    for mode, rows in out.items():
        t1 = next((r["step_s"] for r in rows if r["world_size"] == 1), None)
        for r in rows:
            if t1 is None:
                r["efficiency"] = float("nan")
            elif mode == "weak":
                r["efficiency"] = t1 / r["step_s"]
            else:
                r["efficiency"] = t1 / (r["world_size"] * r["step_s"])
    return out
