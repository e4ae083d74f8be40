"""A pipeline on real ranks, checked against one process (Chapter 7).

:func:`pipeline_worker` runs one step of a schedule with one stage per rank
(:func:`labutils.parallel.pipeline.stage.run_schedule`); :func:`reference_step` is the single
process (gradient accumulation over the same micro-batches) it must match within 1e-5 in fp32,
and :func:`measured_op_times_s` / :func:`measured_step_s` read the timed events for the
simulator.
"""

from __future__ import annotations

import torch

from labutils.model import TransformerConfig
from labutils.parallel.grid import rank_device
from labutils.parallel.harness import build_model, make_batch
from labutils.parallel.pipeline.schedule import KIND
from labutils.parallel.pipeline.stage import REAL_SCHEDULES, run_schedule
from labutils.validate import positive_int

def reference_step(cfg: TransformerConfig, m: int, micro_batch: int,
                   seed: int = 0) -> tuple[float, dict[str, torch.Tensor]]:
    """One process, gradient accumulation over the m micro-batches: (mean loss in nats,
    name → gradient of the mean loss)."""
    m, micro_batch = positive_int("m", m), positive_int("micro_batch", micro_batch)
    model = build_model(cfg, seed)
    idx, tgt = make_batch(cfg, m * micro_batch, seed)
    total = 0.0
    for x, y in zip(idx.chunk(m), tgt.chunk(m)):
        _, loss = model(x, y)
        (loss / m).backward()
        total += loss.item() / m
    return total, {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def pipeline_worker(cfg: TransformerConfig, schedule: str, m: int, micro_batch: int,
                    seed: int = 0) -> dict:
    """One training step of ``schedule`` ("afab" or "1f1b"), one stage per rank of the world:
    the batch ``make_batch(cfg, m · micro_batch, seed)`` cut into ``m`` micro-batches.

    Returns what :func:`run_schedule` returns, with gradients and events on the CPU.
    """
    if schedule not in REAL_SCHEDULES:
        raise ValueError(f"schedule must be one of {REAL_SCHEDULES}, got {schedule!r}")
    device = rank_device()
    model = build_model(cfg, seed, device)
    idx, tgt = make_batch(cfg, m * micro_batch, seed, device)
    out = run_schedule(model, schedule, idx.chunk(m), tgt.chunk(m))
    out["grads"] = {n: g.cpu() for n, g in out["grads"].items()}
    return out


def max_grad_error(results: list[dict], reference: dict[str, torch.Tensor]) -> float:
    """Largest |pipeline − reference| over every parameter gradient; raises ValueError if the
    ranks together do not cover every parameter."""
    covered = {n for r in results for n in r["grads"]}
    if covered != set(reference):
        raise ValueError(f"stages cover different parameters: {sorted(covered ^ set(reference))}")
    return max((r["grads"][n] - reference[n]).abs().max().item() for r in results for n in r["grads"])


def measured_op_times_s(results: list[dict]) -> tuple[float, float]:
    """Median forward and backward time of one micro-batch through one stage (seconds), from
    the events of a :func:`pipeline_worker` run: what :func:`simulate` needs as t_f, t_b."""
    import statistics

    evs = [e for r in results for e in r["events"]]
    f = [e.duration_s for e in evs if e.kind == KIND["F"]]
    b = [e.duration_s for e in evs if e.kind == KIND["B"]]
    if not f or not b:
        raise ValueError("results hold no forward/backward events")
    return statistics.median(f), statistics.median(b)


def measured_step_s(results: list[dict]) -> float:
    """Wall time of the step: first compute start to last compute end over all ranks (seconds)."""
    evs = [e for r in results for e in r["events"] if e.kind in (KIND["F"], KIND["B"])]
    return max(e.end_s for e in evs) - min(e.start_s for e in evs)
