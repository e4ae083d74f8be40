"""What every parallel strategy is checked with: the tiny GPT, its batches, one process's answer.

Each strategy (data, tensor, pipeline, context parallelism, and their compositions) builds the
same seeded :class:`labutils.nn.GPT` with :func:`build_model`, reads the same batches from
:func:`make_batch`, cuts them with :func:`batch_shard`, and is compared with a single process
(:func:`reference_gradients`, :func:`reference_training`) through :func:`max_grad_difference`:
the same loss and gradients within 1e-5 in fp32. :class:`EventLog` records the timed
compute/communication spans every strategy's timeline is drawn from
(:mod:`labutils.parallel.timeline`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from labutils.model import TransformerConfig
from labutils.nn import GPT
from labutils.validate import number, positive_int

FP32_TOLERANCE = 1e-5  # the course's bar: a parallel run equals one process within this, in fp32

# ----------------------------------------------------------------------------------------------
# Timeline events
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One span on one rank: ``kind`` is "compute", "comm", "wait", "forward" or "backward";
    times are ``time.perf_counter`` seconds (one clock for every process on a Linux machine)."""

    rank: int
    kind: str
    name: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class EventLog:
    """Collects :class:`Event` spans on this rank (disabled logs record nothing)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.events: list[Event] = []
        self.rank = dist.get_rank() if dist.is_initialized() else 0

    def add(self, kind: str, name: str, start_s: float, end_s: float) -> None:
        if self.enabled:
            self.events.append(Event(self.rank, kind, name, start_s, end_s))

    @contextmanager
    def span(self, kind: str, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(kind, name, t0, time.perf_counter())


# ----------------------------------------------------------------------------------------------
# Reproducible model and data
# ----------------------------------------------------------------------------------------------


def build_model(cfg: TransformerConfig, seed: int = 0,
                device: torch.device | str | None = None) -> GPT:
    """The shared GPT with weights seeded by ``seed`` (fp32), on ``device`` (default CPU).

    The weights are drawn on the CPU and then moved, so every rank and every device gets the
    same numbers; the global random state is left as it was.
    """
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__}")
    g_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = GPT(cfg)
    torch.random.set_rng_state(g_state)
    return model.to(device) if device is not None else model


def make_batch(cfg: TransformerConfig, batch: int, seed: int = 0,
               device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids and next-token targets, each (batch, seq_len), from ``seed``."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int (sequences), got {batch!r}")
    g = torch.Generator().manual_seed(10_000 + seed)
    tokens = torch.randint(0, cfg.vocab_size, (batch, cfg.seq_len + 1), generator=g)
    idx, tgt = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()  # (B, T), (B, T)
    return (idx.to(device), tgt.to(device)) if device is not None else (idx, tgt)


def batch_shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rows ``rank·B/world … (rank+1)·B/world`` of ``t`` (B must divide by ``world``)."""
    if t.shape[0] % world:
        raise ValueError(f"batch {t.shape[0]} must be divisible by the number of shards {world}")
    per = t.shape[0] // world
    return t[rank * per:(rank + 1) * per]  # (B/world, ...)


def gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """name → a CPU copy of each parameter's gradient (parameters without one are left out)."""
    return {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()
            if p.grad is not None}


def sgd_step(params: Iterable[torch.Tensor], lr: float) -> None:
    """Plain SGD, ``p -= lr · p.grad``, then clear the gradients. Hand-written: torch.optim's
    constructor imports torch._dynamo (seconds per process), and a shard updates like the
    full tensor it is a slice of."""
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None


# ----------------------------------------------------------------------------------------------
# The single-process reference
# ----------------------------------------------------------------------------------------------


def reference_gradients(cfg: TransformerConfig, global_batch: int,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Gradients of the mean loss over the full batch in one process: what DDP must reproduce."""
    model = build_model(cfg, seed)
    idx, tgt = make_batch(cfg, global_batch, seed)
    _, loss = model(idx, tgt)
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def reference_training(cfg: TransformerConfig, global_batch: int, steps: int, lr: float = 0.1,
                       seed: int = 0) -> dict:
    """``steps`` SGD steps of the full model on one process, batch ``make_batch(cfg,
    global_batch, seed + step)`` at each step.

    Returns ``{"losses": [mean loss in nats per step], "grads": [name → gradient per step]}``:
    what every composition of parallelisms must reproduce.
    """
    steps, lr = positive_int("steps", steps), number("lr", lr, low=0.0, low_open=True)
    model = build_model(cfg, seed)
    losses, grads = [], []
    for step in range(steps):
        idx, tgt = make_batch(cfg, global_batch, seed + step)
        _, loss = model(idx, tgt)
        loss.backward()
        losses.append(loss.item())
        grads.append(gradients(model))
        sgd_step(model.parameters(), lr)
    return {"losses": losses, "grads": grads}


def max_grad_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute element-wise difference between two name→gradient dicts."""
    if a.keys() != b.keys():
        raise ValueError(f"gradient dicts hold different parameters: {sorted(a.keys() ^ b.keys())}")
    return max((a[k] - b[k]).abs().max().item() for k in a)
