"""A teaching DistributedDataParallel in four steps, each checked against one process.

Data parallelism (Chapter 5; Lecture 1, *Pretraining Large Language Models*, "Data Parallelism
- 1D" and "Overlap Communication + Computation"): every rank holds the whole model, runs
forward and backward on its own micro-batch, and the gradients are averaged with an all-reduce
over the data-parallel group, so every rank takes the same optimizer step as one process on the
full batch would. The four wrappers add PyTorch DDP's tricks one at a time (Li et al. 2020,
Sec. 3.2):

1. :class:`NaiveDDP`: one all-reduce per parameter after backward;
2. :class:`BucketedDDP`: gradients packed into buckets of ``bucket_bytes``, one all-reduce per
   bucket (fewer messages: the α term of the α–β model);
3. :class:`OverlappedDDP`: a ``register_post_accumulate_grad_hook`` on every parameter starts a
   bucket's asynchronous all-reduce as soon as its last gradient exists, while backward still
   runs for earlier layers;
4. gradient accumulation with :meth:`OverlappedDDP.no_sync`: micro-batches accumulate locally,
   and only the last backward communicates.

Each wrapper records its all-reduces as timed spans in an
:class:`labutils.parallel.harness.EventLog`; the workers are
:mod:`labutils.parallel.data.ddp_workers`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.nn as nn

from labutils.parallel.grid import global_rank
from labutils.parallel.harness import EventLog

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


def param_count_bytes(model: nn.Module) -> int:
    """Bytes of gradients DDP all-reduces for ``model`` (unique parameters × element size)."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def n_buckets(model: nn.Module, bucket_bytes: int) -> int:
    """How many buckets :func:`make_buckets` forms for ``model``."""
    return len(make_buckets([p for p in model.parameters() if p.requires_grad], bucket_bytes))
