"""One check per parallel strategy, for ``torchrun``: run it on every rank, compare with one process.

Each function takes no arguments, runs on however many ranks the default process group has
(gloo on CPUs, NCCL on GPUs; every tensor on :func:`labutils.parallel.grid.rank_device`),
gathers the ranks' results to every rank, and returns the largest difference from a single
process computing the same thing: the course's bar is 1e-5 in fp32
(:data:`labutils.parallel.harness.FP32_TOLERANCE`). :mod:`labutils.parallel.run` calls them:

    torchrun --nproc-per-node 2 -m labutils.parallel.run ddp zero tp pp cp
    torchrun --nproc-per-node 4 -m labutils.parallel.run tp_dp pp_dp cp_dp
    torchrun --nproc-per-node 8 -m labutils.parallel.run tp_pp_dp
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from labutils.attention import naive_attention
from labutils.model import TransformerConfig, tiny_config
from labutils.parallel import composition
from labutils.parallel.data import ddp_workers, zero_workers
from labutils.parallel.context import sharding, workers
from labutils.parallel.grid import GridShape, rank_device
from labutils.parallel.harness import max_grad_difference, reference_gradients


def _gather(obj: object) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _cfg(world: int) -> TransformerConfig:
    """The tiny GPT, widened so that every rank gets a head and a layer: n_heads and n_layers
    at least ``world``."""
    heads = max(4, world)
    return tiny_config(seq_len=16, n_heads=heads, d_model=8 * heads, n_layers=max(2, world))


def _degree(name: str, world: int, fixed: int) -> int:
    """The data-parallel degree left when ``fixed`` ranks form one model replica."""
    if world % fixed:
        raise ValueError(f"the {name} check needs a world size divisible by {fixed}, got {world}")
    return world // fixed


def _composed(shape: GridShape, micro_batches: int) -> float:
    run = composition.CompositionRun(_cfg(dist.get_world_size()), shape,
                                     global_batch=2 * shape.dp * micro_batches,
                                     micro_batches=micro_batches, steps=2)
    out = composition.compare_with_reference(run, _gather(composition.train_worker(run)))
    return max(out["loss"], out["grads"])


def ddp_check() -> float:
    """Bucketed, overlapped DDP (Chapter 5) vs one process on the whole batch: max |Δ grad|."""
    world = dist.get_world_size()
    cfg = _cfg(world)
    mine = ddp_workers.ddp_gradients_worker("overlapped", cfg, 2 * world, bucket_bytes=4096)
    reference = reference_gradients(cfg, 2 * world)
    return max(max_grad_difference(reference, r["grads"]) for r in _gather(mine))


def zero_check() -> float:
    """ZeRO stages 1–3 (Chapter 5's engine) and FSDP2 vs one process with Adam: the largest
    |Δ loss| or |Δ parameter| after the run."""
    world = dist.get_world_size()
    run = zero_workers.ZeroRun(tiny_config(), steps=2, micro_batch=2, lr=1e-3)  # as tests/test_zero.py
    reference = zero_workers.train_reference(run, world)
    errors = []
    for out in [zero_workers.train_zero(run, stage) for stage in (1, 2, 3)] + [zero_workers.train_fsdp2(run)]:
        ranks = _gather({"losses": out["losses"], "params": out["params"]})
        losses = [sum(r["losses"][i] for r in ranks) / world for i in range(run.steps)]
        errors += [abs(a - b) for a, b in zip(losses, reference["losses"])]
        errors += [(r["params"] - reference["params"]).abs().max().item() for r in ranks]
    return max(errors)


def tp_check() -> float:
    """Tensor parallelism over all ranks (Chapter 6), trained two steps: max |Δ loss|, |Δ grad|."""
    return _composed(GridShape(tp=dist.get_world_size()), micro_batches=1)


def pp_check() -> float:
    """A 1F1B pipeline over all ranks (Chapter 7), trained two steps: max |Δ loss|, |Δ grad|."""
    world = dist.get_world_size()
    return _composed(GridShape(pp=world), micro_batches=2 * world)


def cp_check() -> float:
    """Causal zigzag ring attention over all ranks (Chapter 8) vs attention on one process:
    the largest error in the output and in the gradients of q, k and v."""
    world = dist.get_world_size()
    g = torch.Generator().manual_seed(0)
    q, k, v, grad_out = (torch.randn(2, 2, 4 * world, 8, generator=g) for _ in range(4))
    mine = workers.ring_attention_worker(q, k, v, True, "zigzag", grad_out)
    ranks = _gather({n: mine[n] for n in ("out", "dq", "dk", "dv")})
    full = [t.clone().requires_grad_() for t in (q, k, v)]
    out = naive_attention(*full, causal=True)
    out.backward(grad_out)
    expected = {"out": out.detach(), "dq": full[0].grad, "dk": full[1].grad, "dv": full[2].grad}
    return max((sharding.unshard([r[n] for r in ranks], "zigzag") - t).abs().max().item()
               for n, t in expected.items())


def tp_dp_check() -> float:
    """TP = 2 inside each replica, data parallelism over the rest (Chapter 12)."""
    return _composed(GridShape(dp=_degree("tp_dp", dist.get_world_size(), 2), tp=2), 1)


def pp_dp_check() -> float:
    """PP = 2 inside each replica, data parallelism over the rest (Chapter 12)."""
    return _composed(GridShape(dp=_degree("pp_dp", dist.get_world_size(), 2), pp=2), 4)


def cp_dp_check() -> float:
    """CP = 2 (zigzag ring attention through the whole GPT) × data parallelism (Chapter 12)."""
    return _composed(GridShape(dp=_degree("cp_dp", dist.get_world_size(), 2), cp=2), 1)


def tp_pp_dp_check() -> float:
    """TP = 2 × PP = 2 inside each replica, data parallelism over the rest (Chapter 12)."""
    return _composed(GridShape(dp=_degree("tp_pp_dp", dist.get_world_size(), 4), pp=2, tp=2), 4)


def device_name() -> str:
    """Where this rank's tensors live (a GPU under NCCL, the CPU under gloo)."""
    device = rank_device()
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
