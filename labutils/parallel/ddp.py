"""A teaching DistributedDataParallel in four steps, each checked against one process.

Data parallelism (Chapter 5; lecture 001_1699c98f94d8aa9d.txt, "Data Parallelism - 1D" and
"Overlap Communication + Computation"): every rank holds the whole model, runs forward and
backward on its own micro-batch, and the gradients are averaged with an all-reduce, so every
rank takes the same optimizer step as one process on the full batch would. The four wrappers
add PyTorch DDP's tricks one at a time (Li et al. 2020, Sec. 3.2):

1. :class:`NaiveDDP`: one all-reduce per parameter after backward;
2. :class:`BucketedDDP`: gradients packed into buckets of ``bucket_bytes``, one all-reduce per
   bucket (fewer messages: the α term of the α–β model);
3. :class:`OverlappedDDP`: a ``register_post_accumulate_grad_hook`` on every parameter starts a
   bucket's asynchronous all-reduce as soon as its last gradient exists, while backward still
   runs for earlier layers;
4. gradient accumulation with :meth:`OverlappedDDP.no_sync`: micro-batches accumulate locally,
   and only the last backward communicates.

:class:`EventLog` records real ``time.perf_counter`` timestamps (a clock shared by all processes
on one Linux machine) of compute and communication on each rank, for the timelines of
:mod:`labutils.parallel.timeline`. Workers (``*_worker``) run through
:func:`labutils.parallel.launch`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn

from labutils.model import TransformerConfig
from labutils.parallel.grid import global_rank, rank_device
from labutils.parallel.harness import (Event, EventLog, batch_shard, build_model, gradients,
                                       make_batch, max_grad_difference, reference_gradients)

VARIANTS = ("naive", "bucketed", "overlapped", "accumulate", "torch")
DEFAULT_BUCKET_BYTES = 25 * 2**20  # torch DDP's default bucket_cap_mb=25 (MiB)


# ----------------------------------------------------------------------------------------------
# Helpers shared by the wrappers
# ----------------------------------------------------------------------------------------------


def _check_module(module: object) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not dist.is_initialized():
        raise RuntimeError("no default process group: wrap the model inside a worker run by "
                           "labutils.parallel.launch")
    return module


def _check_bucket_bytes(bucket_bytes: object) -> int:
    if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) or bucket_bytes < 1:
        raise ValueError(f"bucket_bytes must be a positive int (bytes), got {bucket_bytes!r}")
    return bucket_bytes


def broadcast_parameters(module: nn.Module, src: int = 0,
                         group: dist.ProcessGroup | None = None) -> None:
    """Copy the parameters and buffers of rank ``src`` of ``group`` (default: the whole world) to
    every rank of the group, as torch DDP does at wrap time."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, global_rank(group, src), group=group)


def make_buckets(params: list[nn.Parameter], bucket_bytes: int) -> list[list[nn.Parameter]]:
    """Group ``params`` in reverse registration order (roughly the order backward produces their
    gradients) into buckets of at most ``bucket_bytes`` each (a larger parameter gets its own)."""
    bucket_bytes = _check_bucket_bytes(bucket_bytes)
    buckets: list[list[nn.Parameter]] = []
    current: list[nn.Parameter] = []
    size = 0
    for p in reversed(params):
        nbytes = p.numel() * p.element_size()
        if current and size + nbytes > bucket_bytes:
            buckets.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


def _flat_grads(bucket: list[nn.Parameter]) -> torch.Tensor:
    """Concatenate a bucket's gradients (zeros for a parameter without one) into one 1-D tensor."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in bucket])  # (sum of numels,)


def _unflatten_into(flat: torch.Tensor, bucket: list[nn.Parameter]) -> None:
    """Write the averaged flat buffer back into each parameter's ``.grad``."""
    offset = 0
    for p in bucket:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


class _DDPBase(nn.Module):
    """Holds the wrapped module, its (deduplicated) parameters and the event log.

    ``group`` is the data-parallel process group (default: the whole world); under a
    :class:`labutils.parallel.grid.RankGrid` it is ``grid.group("dp")``.
    """

    def __init__(self, module: nn.Module, log: EventLog | None = None,
                 group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        self.module = _check_module(module)
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.log = log if log is not None else EventLog(enabled=False)
        # named_parameters() skips the tied head weight (it *is* tok_emb.weight): one gradient.
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.allreduce_calls = 0  # collectives issued so far (what no_sync saves)
        broadcast_parameters(module, group=group)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self) -> None:
        """After backward: make every ``.grad`` the average over ranks."""
        raise NotImplementedError


class NaiveDDP(_DDPBase):
    """Variant 1: after backward, one blocking all-reduce per parameter, then divide by p."""

    def finish_gradient_synchronization(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            with self.log.span("comm", f"all-reduce param {i}"):
                dist.all_reduce(p.grad, group=self.group)
            self.allreduce_calls += 1
            p.grad /= self.world_size


class BucketedDDP(_DDPBase):
    """Variant 2: after backward, one blocking all-reduce per bucket of ``bucket_bytes``."""

    def __init__(self, module: nn.Module, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 log: EventLog | None = None, group: dist.ProcessGroup | None = None) -> None:
        super().__init__(module, log, group)
        self.buckets = make_buckets(self.params, bucket_bytes)

    def finish_gradient_synchronization(self) -> None:
        for i, bucket in enumerate(self.buckets):
            with self.log.span("comm", f"all-reduce bucket {i}"):
                flat = _flat_grads(bucket)
                dist.all_reduce(flat, group=self.group)
            self.allreduce_calls += 1
            flat /= self.world_size
            _unflatten_into(flat, bucket)


class OverlappedDDP(_DDPBase):
    """Variants 3 and 4: bucketed all-reduces started from autograd hooks during backward.

    Each parameter's ``register_post_accumulate_grad_hook`` fires once its gradient is final for
    this backward. When a bucket's last gradient arrives, its asynchronous all-reduce starts
    (buckets start in index order on every rank, so all ranks issue collectives in the same
    order). :meth:`finish_gradient_synchronization` waits for them and writes the averages back.
    Inside :meth:`no_sync` the hooks do nothing, so gradients accumulate locally.
    """

    def __init__(self, module: nn.Module, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 log: EventLog | None = None, group: dist.ProcessGroup | None = None) -> None:
        super().__init__(module, log, group)
        self.buckets = make_buckets(self.params, bucket_bytes)
        self._bucket_of = {id(p): i for i, b in enumerate(self.buckets) for p in b}
        self._sync = True
        self._reset()
        self._hooks = [p.register_post_accumulate_grad_hook(self._on_grad_ready)
                       for p in self.params]

    def _reset(self) -> None:
        self._pending = [len(b) for b in self.buckets]  # gradients still missing per bucket
        self._next = 0  # next bucket to launch (launch order = bucket order on every rank)
        self._inflight: list[tuple[dist.Work, torch.Tensor, int]] = []

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes inside this block accumulate gradients without communicating."""
        old, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = old

    def _on_grad_ready(self, param: torch.Tensor) -> None:
        if not self._sync:
            return
        self._pending[self._bucket_of[id(param)]] -= 1
        while self._next < len(self.buckets) and self._pending[self._next] == 0:
            self._launch(self._next)
            self._next += 1

    def _launch(self, i: int) -> None:
        flat = _flat_grads(self.buckets[i])
        start = time.perf_counter()
        work = dist.all_reduce(flat, async_op=True, group=self.group)
        self.allreduce_calls += 1
        if self.log.enabled:
            # The future completes on the communication thread when the all-reduce ends: a real
            # end timestamp, not the time we happened to call wait().
            work.get_future().then(
                lambda _f, i=i, start=start: self.log.add("comm", f"all-reduce bucket {i}",
                                                          start, time.perf_counter()))
        self._inflight.append((work, flat, i))

    def finish_gradient_synchronization(self) -> None:
        # Buckets whose hooks never fired (unused parameters) are launched now, still in order.
        while self._next < len(self.buckets):
            self._launch(self._next)
            self._next += 1
        with self.log.span("wait", "wait for all-reduces"):
            for work, flat, i in self._inflight:
                work.wait()
                flat /= self.world_size
                _unflatten_into(flat, self.buckets[i])
        self._reset()

    def remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


def _check_split(global_batch: int, world: int, accum_steps: int) -> None:
    if isinstance(accum_steps, bool) or not isinstance(accum_steps, int) or accum_steps < 1:
        raise ValueError(f"accum_steps must be a positive int, got {accum_steps!r}")
    if global_batch % (world * accum_steps):
        raise ValueError(f"global_batch={global_batch} must be divisible by world_size × "
                         f"accum_steps = {world} × {accum_steps}: every micro-batch has the "
                         "same size, so the average of means is the full-batch mean")


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------


def wrap(variant: str, model: nn.Module, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
         log: EventLog | None = None) -> nn.Module:
    """Wrap ``model`` as ``variant`` (one of ``VARIANTS``; "torch" is PyTorch's own DDP)."""
    if variant == "naive":
        return NaiveDDP(model, log)
    if variant == "bucketed":
        return BucketedDDP(model, bucket_bytes, log)
    if variant in ("overlapped", "accumulate"):
        return OverlappedDDP(model, bucket_bytes, log)
    if variant == "torch":
        _check_bucket_bytes(bucket_bytes)
        return nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_bytes / 2**20)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


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


def param_count_bytes(model: nn.Module) -> int:
    """Bytes of gradients DDP all-reduces for ``model`` (unique parameters × element size)."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def n_buckets(model: nn.Module, bucket_bytes: int) -> int:
    """How many buckets :func:`make_buckets` forms for ``model``."""
    return len(make_buckets([p for p in model.parameters() if p.requires_grad], bucket_bytes))


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


__all__ = ["VARIANTS", "DEFAULT_BUCKET_BYTES", "Event", "EventLog", "NaiveDDP", "BucketedDDP",
           "OverlappedDDP", "broadcast_parameters", "make_buckets", "build_model", "make_batch",
           "reference_gradients", "max_grad_difference", "wrap", "ddp_gradients_worker",
           "ddp_step_time_worker", "timeline_worker", "param_count_bytes", "n_buckets",
           "measure_scaling", "scaling_worker", "ddp_variants_worker", "fail_in_backward_worker"]
