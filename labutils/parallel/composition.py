"""Parallelisms composed on one rank grid: the course GPT trained with TP × DP, PP × DP,
TP × PP × DP and CP × DP.

Chapter 12. Every rank builds the same seeded GPT (:func:`labutils.parallel.harness.build_model`)
and its place in a :class:`labutils.parallel.grid.RankGrid` decides what it keeps. The
parallelisms are applied in torchtitan's order (its trainer calls the model's ``pipelining_fn``
first and then ``parallelize_fn`` on each stage, which applies tensor parallelism before the
data-parallel wrapper):

1. **pipeline**: keep this rank's stage (its blocks; the embedding on the first stage, the head
   on the last). Cutting first means the later steps only touch the layers this rank holds.
2. **tensor parallelism** inside the stage: each block becomes a
   :class:`labutils.parallel.tensor.layers.TPBlock` whose collectives run in the ``tp`` group.
   TP changes what a parameter *is* (a shard), so it must come before anything that reads
   parameters.
3. **data parallelism** last: a :class:`labutils.parallel.data.ddp.BucketedDDP` over the ``dp``
   group averages the gradients of whatever parameters the rank now holds, shards included.
   Wrapping earlier would broadcast and bucket full tensors that TP then replaces.

Context parallelism (CP × DP here) cuts the sequence instead: every rank keeps a zigzag shard
of each sequence through the whole model (:mod:`labutils.parallel.context.layers`), and its
gradients are averaged over the cp group, then over the dp group.

Every rank trains ``steps`` SGD steps; :func:`compare_with_reference` puts the shards back
together and measures the distance to one process training the full model on the full batch
(:func:`labutils.parallel.harness.reference_training`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from labutils.model import TransformerConfig
from labutils.parallel.context.layers import cp_loss, shard_sequence
from labutils.parallel.data.ddp import BucketedDDP
from labutils.parallel.grid import GridShape, RankGrid, rank_device
from labutils.parallel.harness import (batch_shard, build_model, gradients, make_batch,
                                       max_grad_difference, reference_training, sgd_step)
from labutils.parallel.pipeline.stage import (REAL_SCHEDULES, PipelineStage, run_schedule,
                                             stage_layers)
from labutils.parallel.tensor.layers import TPBlock, param_layout, unshard
from labutils.validate import number, positive_int


@dataclass(frozen=True)
class CompositionRun:
    """One composed training run: the model, the grid, the batch and the optimizer.

    ``global_batch`` sequences per step are split over the ``dp`` replicas, and each replica's
    share into ``micro_batches`` pipeline micro-batches (use 1 without pipeline parallelism).
    """

    cfg: TransformerConfig
    shape: GridShape
    global_batch: int = 8
    micro_batches: int = 2
    steps: int = 3
    lr: float = 0.1  # plain SGD
    seed: int = 0
    schedule: str = "1f1b"

    def __post_init__(self) -> None:
        if not isinstance(self.cfg, TransformerConfig):
            raise TypeError(f"cfg must be a TransformerConfig, got {type(self.cfg).__name__}")
        if not isinstance(self.shape, GridShape):
            raise TypeError(f"shape must be a GridShape, got {type(self.shape).__name__}")
        for name in ("global_batch", "micro_batches", "steps"):
            positive_int(name, getattr(self, name))
        number("lr", self.lr, low=0.0, low_open=True)
        if self.schedule not in REAL_SCHEDULES:
            raise ValueError(f"schedule must be one of {REAL_SCHEDULES}, got {self.schedule!r}")
        s = self.shape
        if s.cp > 1 and (s.pp > 1 or s.tp > 1):
            raise ValueError(f"context parallelism composes with data parallelism here: shape.cp="
                             f"{s.cp} needs pp = tp = 1, got pp={s.pp}, tp={s.tp}")
        if s.cp > 1 and (self.cfg.seq_len % (2 * s.cp) or self.micro_batches != 1):
            raise ValueError(f"shape.cp={s.cp} needs seq_len divisible by 2·cp (the zigzag "
                             f"layout) and micro_batches=1, got seq_len={self.cfg.seq_len}, "
                             f"micro_batches={self.micro_batches}")
        if self.cfg.n_heads % s.tp:
            raise ValueError(f"shape.tp={s.tp} must divide n_heads={self.cfg.n_heads}")
        if self.cfg.n_layers < s.pp:
            raise ValueError(f"shape.pp={s.pp} must be <= n_layers={self.cfg.n_layers}")
        if self.global_batch % (s.dp * self.micro_batches):
            raise ValueError(f"global_batch={self.global_batch} must be divisible by dp × "
                             f"micro_batches = {s.dp} × {self.micro_batches}")


def parallelize(model: torch.nn.Module, grid: RankGrid) -> tuple[PipelineStage, BucketedDDP]:
    """Apply pipeline, then tensor, then data parallelism to ``model`` for this rank (in place
    for the blocks it keeps). Returns the stage (what runs) and its data-parallel wrapper."""
    pp, tp = grid.rank("pp"), grid.rank("tp")
    for i in stage_layers(len(model.blocks), grid.size("pp"))[pp]:  # 1. this stage's blocks
        model.blocks[i] = TPBlock(model.blocks[i], tp, grid.size("tp"),  # 2. sharded over tp
                                  group=grid.group("tp"))
    stage = PipelineStage(model, pp, grid.size("pp"))
    return stage, BucketedDDP(stage, group=grid.group("dp"))  # 3. replicated over dp


def train_worker(run: CompositionRun) -> dict:
    """Train ``run.steps`` steps on this rank. Returns ``{"coords", "losses": mean loss per step
    over the whole global batch (last pipeline stage; None elsewhere), "grads": [name → this
    rank's gradient (a shard under TP) per step], "layout": name → col/row/replicated}``."""
    grid = RankGrid(run.shape)
    device = rank_device()
    model = build_model(run.cfg, run.seed, device)
    if grid.size("cp") > 1:
        return _train_cp(run, grid, model)
    stage, ddp = parallelize(model, grid)
    dp, dp_rank, m = grid.size("dp"), grid.rank("dp"), run.micro_batches
    losses, grads = [], []
    for step in range(run.steps):
        idx, tgt = make_batch(run.cfg, run.global_batch, run.seed + step, device)
        idx, tgt = batch_shard(idx, dp_rank, dp), batch_shard(tgt, dp_rank, dp)  # (B/dp, T)
        out = run_schedule(model, run.schedule, idx.chunk(m), tgt.chunk(m), grid.group("pp"))
        ddp.finish_gradient_synchronization()  # average over the dp group
        if out["loss"] is not None:  # last stage: the mean over the dp replicas' losses
            loss = torch.tensor([out["loss"]], device=device)
            dist.all_reduce(loss, group=grid.group("dp"))
            losses.append(loss.item() / dp)
        grads.append(gradients(model))
        sgd_step(stage.parameters(), run.lr)
    return {"coords": grid.coords, "losses": losses or None, "grads": grads,
            "layout": param_layout(model)}


def _train_cp(run: CompositionRun, grid: RankGrid, model: torch.nn.Module) -> dict:
    """:func:`train_worker` for CP × DP: every rank holds a zigzag shard of each sequence
    through the whole model (:mod:`labutils.parallel.context.layers`); the gradients are
    averaged over the cp group (other tokens), then over the dp group (other sequences)."""
    device = model.tok_emb.weight.device
    positions = shard_sequence(model, grid.rank("cp"), grid.size("cp"), grid.group("cp"))
    over_cp = BucketedDDP(model, group=grid.group("cp"))
    over_dp = BucketedDDP(model, group=grid.group("dp"))
    dp, dp_rank = grid.size("dp"), grid.rank("dp")
    losses, grads = [], []
    for step in range(run.steps):
        idx, tgt = make_batch(run.cfg, run.global_batch, run.seed + step, device)
        idx, tgt = batch_shard(idx, dp_rank, dp), batch_shard(tgt, dp_rank, dp)  # (B/dp, T)
        loss = cp_loss(model, idx, tgt, positions)  # mean over this rank's tokens
        loss.backward()
        over_cp.finish_gradient_synchronization()
        over_dp.finish_gradient_synchronization()
        total = loss.detach().reshape(1)
        for axis in ("cp", "dp"):  # equal token counts: the mean of the means
            dist.all_reduce(total, group=grid.group(axis))
        losses.append(total.item() / (grid.size("cp") * dp))
        grads.append(gradients(model))
        sgd_step(model.parameters(), run.lr)
    return {"coords": grid.coords, "losses": losses, "grads": grads,
            "layout": param_layout(model)}


def assemble(run: CompositionRun, per_rank: list[dict], dp_rank: int = 0) -> dict:
    """The full model's losses and gradients per step, from replica ``dp_rank``'s ranks:
    TP shards joined along their split dimension, pipeline stages merged."""
    shape = run.shape
    last = [r for r in per_rank if r["coords"]["dp"] == dp_rank
            and r["coords"]["pp"] == shape.pp - 1]
    grads = []
    for step in range(run.steps):
        full: dict[str, torch.Tensor] = {}
        for pp in range(shape.pp):
            ranks = [shape.rank_of(dp=dp_rank, pp=pp, tp=t) for t in range(shape.tp)]
            parts = [per_rank[r]["grads"][step] for r in ranks]
            layout = {n: per_rank[ranks[0]]["layout"][n] for n in parts[0]}
            full.update(unshard(parts, layout))
        grads.append(full)
    return {"losses": last[0]["losses"], "grads": grads}


def compare_with_reference(run: CompositionRun, per_rank: list[dict]) -> dict:
    """Largest differences from one process: ``loss`` (nats, any step), ``grads`` (any step, any
    parameter, any data-parallel replica), with the two loss curves."""
    ref = reference_training(run.cfg, run.global_batch, run.steps, run.lr, run.seed)
    loss_diff, grad_diff = 0.0, 0.0
    for dp_rank in range(run.shape.dp):
        got = assemble(run, per_rank, dp_rank)
        loss_diff = max([loss_diff] + [abs(a - b) for a, b in zip(got["losses"], ref["losses"])])
        grad_diff = max([grad_diff] + [max_grad_difference(g, r)
                                       for g, r in zip(got["grads"], ref["grads"])])
    return {"loss": loss_diff, "grads": grad_diff, "losses": got["losses"],
            "reference_losses": ref["losses"]}


def train(run: CompositionRun, timeout_s: float = 120.0) -> dict:
    """Launch ``run`` on ``run.shape.world_size`` local gloo ranks and compare it with one
    process: :func:`compare_with_reference`'s dict."""
    from labutils.parallel.launch import launch

    if not isinstance(run, CompositionRun):
        raise TypeError(f"run must be a CompositionRun, got {type(run).__name__}")
    per_rank = launch(train_worker, run.shape.world_size, run, timeout_s=timeout_s,
                      threads_per_rank=1)
    return compare_with_reference(run, per_rank)
