"""The pipeline's engine: the shared GPT cut into stages, and one schedule run on real ranks.

Chapter 7. Rank s of the pipeline group holds stage s of :class:`labutils.nn.GPT`: the
embeddings on stage 0, a contiguous slice of blocks on every stage, the final norm, the head and
the loss on the last stage. Activations travel forward and their gradients backward with
point-to-point ``isend`` / ``recv`` between neighbouring ranks (logged in
:mod:`labutils.parallel.comm_log`), in the order a schedule from
:mod:`labutils.parallel.pipeline.schedule` says (``afab`` or ``1f1b``).

The tiny GPT ties its head to the token embedding (GPT-2). The weight then lives on the first
and on the last stage; each gets part of its gradient, and the two parts are summed with one
exchange after the step, as Megatron-LM does in its "embedding group".
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from labutils.nn import GPT
from labutils.parallel import comm_log
from labutils.parallel.grid import global_rank
from labutils.parallel.harness import Event
from labutils.parallel.pipeline.schedule import make_schedule
from labutils.validate import positive_int

REAL_SCHEDULES = ("afab", "1f1b")
TIED_TAG = 1 << 20  # message tag of the tied-embedding gradient exchange


def stage_layers(n_layers: int, p: int) -> list[range]:
    """Blocks of each of p stages: contiguous, as even as possible (earlier stages get the extra
    block). Every stage needs at least one block, so n_layers >= p."""
    n_layers, p = positive_int("n_layers", n_layers), positive_int("p", p)
    if n_layers < p:
        raise ValueError(f"p must be <= n_layers={n_layers} (one block per stage at least), got {p}")
    sizes = [n_layers // p + (1 if s < n_layers % p else 0) for s in range(p)]
    starts = [sum(sizes[:s]) for s in range(p)]
    return [range(a, a + n) for a, n in zip(starts, sizes)]


class PipelineStage(nn.Module):
    """Stage ``stage`` of ``p`` of a GPT; it shares (not copies) the GPT's modules.

    ``forward(x, targets)``: on stage 0, ``x`` is token ids (B, T), else activations (B, T, C).
    Returns activations (B, T, C), or on the last stage the mean cross-entropy (nats).
    """

    def __init__(self, model: GPT, stage: int, p: int) -> None:
        super().__init__()
        self.first, self.last = stage == 0, stage == p - 1
        self.tok_emb = model.tok_emb if self.first else None
        self.pos_emb = model.pos_emb if self.first else None
        self.blocks = nn.ModuleList(model.blocks[i] for i in stage_layers(len(model.blocks), p)[stage])
        self.norm_f = model.norm_f if self.last else None
        self.head = model.head if self.last else None

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        if self.first:
            T = x.shape[1]
            x = self.tok_emb(x)  # (B, T, C)
            if self.pos_emb is not None:
                x = x + self.pos_emb(torch.arange(T, device=x.device))
        for block in self.blocks:
            x = block(x)
        if not self.last:
            return x  # (B, T, C)
        logits = self.head(self.norm_f(x))  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.reshape(-1))


def _sync_tied_embedding(model: GPT, stage: PipelineStage, p: int,
                         group: dist.ProcessGroup | None = None) -> None:
    """Sum the tied embedding's two gradient parts (first and last stage) on both of them."""
    if p == 1 or not model.cfg.tied_embeddings or not (stage.first or stage.last):
        return
    w = model.tok_emb.weight
    if w.grad is None:
        w.grad = torch.zeros_like(w)
    peer = global_rank(group, p - 1 if stage.first else 0)
    theirs = torch.empty_like(w.grad)
    send = dist.isend(w.grad.clone(), peer, tag=TIED_TAG)
    dist.recv(theirs, peer, tag=TIED_TAG)
    send.wait()
    # Add in the same order on both ranks (embedding part + head part): bitwise-equal results.
    w.grad = theirs + w.grad if stage.last else w.grad + theirs


def run_schedule(model: GPT, schedule: str, idx: tuple[torch.Tensor, ...],
                 tgt: tuple[torch.Tensor, ...], group: dist.ProcessGroup | None = None) -> dict:
    """Run one step of ``schedule`` over the micro-batches ``idx``/``tgt`` (each (b, T)) on this
    rank's stage of ``model``; the stages are the ranks of ``group`` (the pipeline group of a
    :class:`labutils.parallel.grid.RankGrid`; default: the whole world), in rank order.

    Returns ``{"stage", "grads": name → gradient for this stage's parameters, "loss": mean loss
    over micro-batches (last stage, else None), "executed": [(rank, "F" or "B", micro-batch,
    start_s, end_s)] appended as each forward/backward finishes, "peak_in_flight":
    most micro-batches whose activations were held at once, "saved_bytes": bytes autograd saved
    per micro-batch (first one), "events": [Event] with perf_counter seconds (forward, backward,
    and "wait" for blocking receives), "sends": point-to-point messages sent}``.
    """
    if schedule not in REAL_SCHEDULES:
        raise ValueError(f"schedule must be one of {REAL_SCHEDULES}, got {schedule!r}")
    m = len(idx)
    s, p = dist.get_rank(group), dist.get_world_size(group)
    nxt, prv = global_rank(group, min(s + 1, p - 1)), global_rank(group, max(s - 1, 0))
    stage = PipelineStage(model, s, p)
    ops = make_schedule(schedule, p, m).ops[s]
    shape = (idx[0].shape[0], idx[0].shape[1], model.cfg.d_model)
    device = idx[0].device

    held: dict[int, tuple[torch.Tensor | None, torch.Tensor]] = {}  # k -> (input, output/loss)
    pending: list[tuple[dist.Work, torch.Tensor]] = []  # isends in flight, and their buffers
    events: list[Event] = []
    executed: list[tuple[int, str, int, float, float]] = []  # what really ran, when
    peak, loss_sum, saved_bytes, sends = 0, 0.0, [], 0

    def receive(src: int, tag: int, name: str) -> torch.Tensor:
        buf = torch.empty(shape, device=device)
        comm_log.record("recv", buf.numel(), buf.element_size(), 2,
                        "forward" if tag % 2 == 0 else "backward")
        t0 = time.perf_counter()
        dist.recv(buf, src, tag=tag)
        events.append(Event(s, "wait", name, t0, time.perf_counter()))
        return buf

    def send(t: torch.Tensor, dst: int, tag: int) -> None:
        nonlocal sends
        t = t.detach().contiguous()
        comm_log.record("send", t.numel(), t.element_size(), 2,
                        "forward" if tag % 2 == 0 else "backward")
        pending.append((dist.isend(t, dst, tag=tag), t))
        sends += 1

    param_storages = {q.untyped_storage().data_ptr() for q in model.parameters()}
    seen_storages: set[int] = set()

    def count_saved(t: torch.Tensor) -> torch.Tensor:
        """Saved-tensor hook: add the bytes of each new activation storage autograd keeps
        (weights, and storages already counted, add nothing)."""
        key = t.untyped_storage().data_ptr()
        if key not in param_storages and key not in seen_storages:
            seen_storages.add(key)
            saved_bytes[-1] += t.untyped_storage().nbytes()
        return t

    dist.barrier(group=group)
    for op in ops:
        k = op.microbatch
        if op.kind == "F":
            x = idx[k] if stage.first else receive(prv, 2 * k, f"recv act {k}").requires_grad_()
            t0 = time.perf_counter()
            saved_bytes.append(0)
            seen_storages.clear()
            with torch.autograd.graph.saved_tensors_hooks(count_saved, lambda t: t):
                out = stage(x, tgt[k] if stage.last else None)
            t1 = time.perf_counter()
            events.append(Event(s, "forward", str(op), t0, t1))
            executed.append((s, "F", k, t0, t1))
            if stage.last:
                loss_sum += out.item() / m
            else:
                send(out, nxt, 2 * k)
            held[k] = (None if stage.first else x, out)
        else:
            x, out = held.pop(k)
            grad = None if stage.last else receive(nxt, 2 * k + 1, f"recv grad {k}")
            t0 = time.perf_counter()
            if stage.last:
                (out / m).backward()  # the mean over micro-batches
            else:
                out.backward(grad)
            t1 = time.perf_counter()
            events.append(Event(s, "backward", str(op), t0, t1))
            executed.append((s, "B", k, t0, t1))
            if not stage.first:
                send(x.grad, prv, 2 * k + 1)
        peak = max(peak, len(held))
    for work, _ in pending:
        work.wait()
    _sync_tied_embedding(model, stage, p, group)
    grads = {n: q.grad.detach().clone() for n, q in model.named_parameters() if q.grad is not None}
    return {"stage": s, "grads": grads, "loss": loss_sum if stage.last else None,
            "executed": executed,
            "peak_in_flight": peak, "saved_bytes": saved_bytes[0], "events": events, "sends": sends}
