"""ZeRO stages 0-3 as teaching code on torch.distributed, measured against the predictions.

Chapter 4 (memory). Rajbhandari et al. 2020 ("ZeRO") shard the model states across the N_d
data-parallel ranks: stage 1 the optimizer states, stage 2 also the gradients, stage 3 also the
parameters. :class:`ZeroEngine` implements each stage in a few lines per stage:

* stage 0 (DDP): every rank holds everything; after backward, all-reduce the gradients.
* stage 1: reduce-scatter the gradients, each rank updates its shard of the parameters (its
  shard of Adam's m and v is all it holds), then all-gathers the updated parameters. The full
  gradients stay allocated.
* stage 2: as stage 1, but each gradient is reduce-scattered as soon as autograd has accumulated
  it (``register_post_accumulate_grad_hook``) and the full gradient is freed at once: only the
  gradient shard is held.
* stage 3: each rank holds only parameter shards. Each unit (one transformer block, or the
  "root": embeddings and final norm) is all-gathered just before its forward and freed after,
  all-gathered again for its backward, and its gradients are reduce-scattered, as in FSDP
  (Zhao et al. 2023). :class:`_ShardedCall` is that unit as an autograd Function.

Every tensor is sharded on its own, flattened and padded to a multiple of N_d (FSDP2 shards each
tensor too); :func:`predicted_held_bytes` predicts what that holds, and equals
:func:`labutils.memory.model_state_bytes` when every tensor divides by N_d.

``comm_log.recording(wrap_torch=True)`` (:mod:`labutils.parallel.comm_log`) wraps the
``torch.distributed`` collectives and records what each call moves; :func:`train_zero` (a worker for :func:`labutils.parallel.launch`) trains the shared
:class:`labutils.nn.GPT` and returns losses, parameters, the bytes each rank holds (found by
walking the tensors it holds) and the communication per step. :func:`train_fsdp2` does the
same with PyTorch's own FSDP2 (``fully_shard``), and :func:`train_ddp` with PyTorch's DDP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.func import functional_call

from labutils.memory import check_zero_stage, get_recipe, shard_numel, zero_comm_volume
from labutils.model import TransformerConfig
from labutils.parallel import comm_log
from labutils.parallel.grid import rank_device
from labutils.parallel.harness import build_model
from labutils.validate import integer

OPTIMIZERS = ("adam", "sgd")
RECIPE_OF = {"adam": "fp32_adam", "sgd": "sgd"}  # all measured runs are fp32 on CPU

# ----------------------------------------------------------------------------------------------
# Counting communication
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Optimizers on plain tensors (so that a shard can be updated on its own)
# ----------------------------------------------------------------------------------------------


@dataclass
class _AdamState:
    m: torch.Tensor  # first moment, same shape as the (sharded) parameter
    v: torch.Tensor  # second moment


@torch.no_grad()
def adam_update(p: torch.Tensor, g: torch.Tensor, state: _AdamState, step: int, lr: float,
                betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step (Kingma & Ba 2015), written as torch.optim.Adam's single-tensor path."""
    b1, b2 = betas
    state.m.lerp_(g, 1 - b1)
    state.v.mul_(b2).addcmul_(g, g, value=1 - b2)
    bias_correction1 = 1 - b1**step
    bias_correction2_sqrt = math.sqrt(1 - b2**step)
    denom = (state.v.sqrt() / bias_correction2_sqrt).add_(eps)
    p.addcdiv_(state.m, denom, value=-lr / bias_correction1)


# ----------------------------------------------------------------------------------------------
# ZeRO-3: a unit whose parameters exist only while it computes
# ----------------------------------------------------------------------------------------------


class _Unit:
    """The parameters of one module (a block, or the root), sharded over the ranks."""

    def __init__(self, engine: ZeroEngine, module: nn.Module, names: list[str],
                 fn: Callable[..., torch.Tensor]) -> None:
        self.engine, self.module, self.names, self.fn = engine, module, names, fn
        self.metas = [engine.meta[n] for n in names]
        self.shards = [engine.shards[n] for n in names]

    def gather(self) -> list[torch.Tensor]:
        """All-gather every parameter of the unit into fresh full-size leaf tensors."""
        W = self.engine.world
        fulls = []
        for meta, shard in zip(self.metas, self.shards):
            buf = torch.empty(meta.shard * W, dtype=shard.dtype, device=shard.device)  # (n padded,)
            dist.all_gather_single(buf, shard.detach())
            fulls.append(buf[: meta.numel].view(meta.shape).requires_grad_())
        self.engine._gathered(sum(t.untyped_storage().nbytes() for t in fulls))
        return fulls

    def regather(self, fulls: list[torch.Tensor]) -> None:
        """All-gather again into the freed storages, for the backward pass."""
        for meta, shard, t in zip(self.metas, self.shards, fulls):
            st = t.untyped_storage()
            st.resize_(meta.shard * self.engine.world * t.element_size())
            # An alias with its own version counter: writing through it does not look like an
            # in-place change of a tensor autograd saved (FSDP uses the same trick).
            alias = torch.empty(0, dtype=t.dtype, device=t.device).set_(st, 0, (meta.shard * self.engine.world,))
            dist.all_gather_single(alias, shard.detach())
        self.engine._gathered(sum(t.untyped_storage().nbytes() for t in fulls))

    def free(self, fulls: list[torch.Tensor]) -> None:
        """Release the full parameters' memory (views that autograd saved see size 0 too)."""
        freed = sum(t.untyped_storage().nbytes() for t in fulls)
        for t in fulls:
            t.untyped_storage().resize_(0)
        self.engine._gathered(-freed)

    def reduce_scatter(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Average the full gradients over ranks, keeping only this rank's shard of each."""
        W = self.engine.world
        out = []
        for meta, g in zip(self.metas, grads):
            full = torch.zeros(meta.shard * W, dtype=g.dtype, device=g.device)
            full[: meta.numel] = g.reshape(-1)
            shard = torch.empty(meta.shard, dtype=g.dtype, device=g.device)
            dist.reduce_scatter_single(shard, full)
            out.append(shard.div_(W))
        return out


class _ShardedCall(torch.autograd.Function):
    """Run ``unit.fn(full_params, *inputs)`` with parameters gathered only while needed.

    forward: all-gather (Ψ_unit), compute with a private graph, free the parameters.
    backward: all-gather again (Ψ_unit), backpropagate through the private graph,
    reduce-scatter the parameter gradients (Ψ_unit), free. Total 3Ψ_unit: ZeRO Sec. 7.2.2.
    """

    @staticmethod
    def forward(ctx, unit: _Unit, n_inputs: int, *args: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        inputs = args[:n_inputs]
        fulls = unit.gather()
        with torch.enable_grad():
            xs = [x.detach().requires_grad_(x.requires_grad) for x in inputs]
            out = unit.fn(dict(zip(unit.names, fulls)), *xs)
        unit.free(fulls)
        ctx.unit, ctx.xs, ctx.out, ctx.fulls = unit, xs, out, fulls
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:  # noqa: ANN001
        unit, xs, fulls = ctx.unit, ctx.xs, ctx.fulls
        unit.regather(fulls)
        torch.autograd.backward(ctx.out, grad_out)
        shard_grads = unit.reduce_scatter([t.grad for t in fulls])
        unit.free(fulls)
        for t in fulls:
            t.grad = None
        ctx.out = None
        grads_in = [x.grad if x.requires_grad else None for x in xs]
        return (None, None, *grads_in, *shard_grads)


class _ShardedBlock(nn.Module):
    """Stands in for a block inside the model: calls the block through :class:`_ShardedCall`."""

    def __init__(self, unit: _Unit) -> None:
        super().__init__()
        self.unit = unit
        self.block = unit.module  # kept for functional_call; its own parameters hold no memory

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ShardedCall.apply(self.unit, 1, x, *self.unit.shards)


# ----------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meta:
    shape: tuple[int, ...]
    numel: int
    shard: int  # elements per rank after padding: ceil(numel / world)
    lo: int  # this rank's first element in the flattened tensor
    hi: int  # one past its last real (unpadded) element


@dataclass
class HeldBytes:
    """Bytes a rank holds, by category, found by walking its tensors (unique storages)."""

    params: int
    grads: int
    optimizer: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "grads": self.grads, "optimizer": self.optimizer,
                "total": self.total}


def _storage_bytes(tensors: Iterator[torch.Tensor], seen: set[int]) -> int:
    """Sum ``nbytes`` of the storages behind ``tensors``, each storage once (``seen`` shared)."""
    total = 0
    for t in tensors:
        if t is None:
            continue
        if hasattr(t, "to_local"):  # a DTensor (FSDP2): what this rank holds is its local shard
            t = t.to_local()
        st = t.untyped_storage()
        key = st.data_ptr()
        if st.nbytes() == 0 or key in seen:
            continue
        seen.add(key)
        total += st.nbytes()
    return total


class ZeroEngine:
    """ZeRO stage 0-3 data parallelism for a model on the default process group.

    ``step(idx, targets)`` runs forward, backward, gradient communication and one optimizer step
    on this rank's micro-batch, and returns the local loss (nats). ``held_bytes()`` walks the
    tensors the rank holds. The model must be identical on every rank when the engine is built
    (same seed).
    """

    def __init__(self, model: nn.Module, stage: int, *, optimizer: str = "adam", lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.stage = check_zero_stage(stage)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not dist.is_initialized():
            raise RuntimeError("ZeroEngine needs an initialised process group (use launch)")
        self.model, self.optimizer, self.lr, self.betas, self.eps = model, optimizer, lr, betas, eps
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.n_steps = 0
        self.live_gathered_bytes = 0
        self.peak_gathered_bytes = 0
        # Unique parameters in a fixed order (tied weights appear once).
        self.named = dict(model.named_parameters())
        self.meta: dict[str, _Meta] = {}
        for name, p in self.named.items():
            S = shard_numel(p.numel(), self.world)
            lo = min(self.rank * S, p.numel())
            self.meta[name] = _Meta(tuple(p.shape), p.numel(), S, lo, min(lo + S, p.numel()))
        self.grad_shards: dict[str, torch.Tensor] = {}
        self.shards: dict[str, torch.Tensor] = {}
        self.opt_state: dict[str, _AdamState] = {}
        # Stage 0 keeps m and v shaped like the parameters; stages 1-3 keep flat padded shards.
        opt_shape = {n: (m.shape if self.stage == 0 else (m.shard,)) for n, m in self.meta.items()}
        if optimizer == "adam":
            self.opt_state = {n: _AdamState(torch.zeros(k, device=self.named[n].device),
                                             torch.zeros(k, device=self.named[n].device))
                              for n, k in opt_shape.items()}
        if self.stage == 2:
            for name, p in self.named.items():
                p.register_post_accumulate_grad_hook(self._make_grad_hook(name))
        if self.stage == 3:
            self._shard_parameters()

    @property
    def padding_elements(self) -> int:
        """Elements of padding this rank holds per sharded buffer (0 when all divide evenly)."""
        return sum(m.shard * self.world - m.numel for m in self.meta.values())

    def _gathered(self, delta_bytes: int) -> None:
        self.live_gathered_bytes += delta_bytes
        self.peak_gathered_bytes = max(self.peak_gathered_bytes, self.live_gathered_bytes)

    # -- stage 2: reduce-scatter each gradient as soon as it is complete ----------------------
    def _make_grad_hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(p: torch.Tensor) -> None:
            self.grad_shards[name] = self._reduce_scatter(name, p.grad)
            p.grad = None  # the full gradient is freed: ZeRO-2 holds only the shard

        return hook

    def _reduce_scatter(self, name: str, g: torch.Tensor) -> torch.Tensor:
        meta = self.meta[name]
        full = torch.zeros(meta.shard * self.world, dtype=g.dtype, device=g.device)  # (n padded,)
        full[: meta.numel] = g.reshape(-1)
        shard = torch.empty(meta.shard, dtype=g.dtype, device=g.device)
        dist.reduce_scatter_single(shard, full)
        return shard.div_(self.world)  # mean over ranks, as DDP

    # -- stage 3: shard the parameters and route the model through _ShardedCall ---------------
    def _shard_parameters(self) -> None:
        for name, p in self.named.items():
            meta = self.meta[name]
            shard = torch.zeros(meta.shard, dtype=p.dtype, device=p.device)
            shard[: meta.hi - meta.lo] = p.detach().reshape(-1)[meta.lo: meta.hi]
            self.shards[name] = shard.requires_grad_()
        model = self.model
        block_units = []
        for i, block in enumerate(model.blocks):
            prefix = f"blocks.{i}."
            names = [n for n in self.named if n.startswith(prefix)]

            def block_fn(params: dict, x: torch.Tensor, _block: nn.Module = block,
                         _prefix: str = prefix) -> torch.Tensor:
                local = {n[len(_prefix):]: t for n, t in params.items()}
                return functional_call(_block, local, (x,))

            block_units.append(_Unit(self, block, names, block_fn))
        root_names = [n for n in self.named if not n.startswith("blocks.")]
        for i, unit in enumerate(block_units):
            model.blocks[i] = _ShardedBlock(unit)

        def root_fn(params: dict, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return functional_call(model, params, (idx, targets))[1]

        self.root = _Unit(self, model, root_names, root_fn)
        # The module's own parameters no longer hold memory: the shards are the truth.
        for p in self.named.values():
            p.requires_grad_(False)
            p.untyped_storage().resize_(0)

    # -- one training step --------------------------------------------------------------------
    def step(self, idx: torch.Tensor, targets: torch.Tensor) -> float:
        """Forward, backward, communicate, update; returns this rank's loss (nats)."""
        self.n_steps += 1
        if self.stage == 3:
            for s in self.shards.values():
                s.grad = None
            loss = _ShardedCall.apply(self.root, 2, idx, targets, *self.root.shards)
            loss.backward()
            for name, s in self.shards.items():
                self._update(name, s, s.grad)
            return loss.item()
        for p in self.named.values():
            p.grad = None
        _, loss = self.model(idx, targets)
        loss.backward()
        if self.stage == 0:
            for name, p in self.named.items():
                dist.all_reduce(p.grad)
                p.grad.div_(self.world)
                self._update(name, p.data, p.grad)
            return loss.item()
        for name, p in self.named.items():
            if self.stage == 1:  # reduce-scatter now; the full gradient stays allocated
                g_shard = self._reduce_scatter(name, p.grad)
            else:  # stage 2: the hook has already reduce-scattered it and freed p.grad
                g_shard = self.grad_shards[name]
            meta = self.meta[name]
            p_shard = torch.zeros(meta.shard, dtype=p.dtype, device=p.device)  # this rank's slice, padded
            p_shard[: meta.hi - meta.lo] = p.data.reshape(-1)[meta.lo: meta.hi]
            self._update(name, p_shard, g_shard)
            full = torch.empty(meta.shard * self.world, dtype=p.dtype, device=p.device)
            dist.all_gather_single(full, p_shard)
            p.data.copy_(full[: meta.numel].view(meta.shape))
        return loss.item()

    def _update(self, name: str, p: torch.Tensor, g: torch.Tensor) -> None:
        with torch.no_grad():
            if self.optimizer == "adam":
                adam_update(p, g, self.opt_state[name], self.n_steps, self.lr, self.betas, self.eps)
            else:
                p.add_(g, alpha=-self.lr)

    # -- what this rank holds -----------------------------------------------------------------
    def held_bytes(self) -> HeldBytes:
        """Walk the tensors this rank holds and sum their bytes, storage by storage."""
        seen: set[int] = set()
        params = _storage_bytes(iter(self.named.values()), seen)
        params += _storage_bytes(iter(self.shards.values()), seen)
        grads = _storage_bytes((p.grad for p in self.named.values()), seen)
        grads += _storage_bytes(iter(self.grad_shards.values()), seen)
        grads += _storage_bytes((s.grad for s in self.shards.values()), seen)
        optimizer = _storage_bytes((t for s in self.opt_state.values() for t in (s.m, s.v)), seen)
        return HeldBytes(params, grads, optimizer)

    def full_parameters(self) -> torch.Tensor:
        """All parameters, flattened in ``named_parameters`` order (gathers under stage 3)."""
        if self.stage != 3:
            return torch.cat([p.detach().reshape(-1) for p in self.named.values()])
        out = []
        for name, shard in self.shards.items():
            meta = self.meta[name]
            buf = torch.empty(meta.shard * self.world, device=shard.device)
            dist.all_gather_single(buf, shard.detach())
            out.append(buf[: meta.numel])
        return torch.cat(out)


# ----------------------------------------------------------------------------------------------
# Predictions for per-tensor sharding
# ----------------------------------------------------------------------------------------------


def _check_numels(numels: object) -> list[int]:
    """``numels`` as a list of element counts (ints >= 0), one per parameter tensor."""
    if isinstance(numels, (str, bytes)) or not isinstance(numels, (list, tuple)):
        raise TypeError(f"numels must be a list of element counts, got {numels!r}")
    return [integer(f"numels[{i}]", n, 0) for i, n in enumerate(numels)]


def predicted_held_bytes(numels: list[int], *, stage: int, dp: int, optimizer: str = "adam") -> dict[str, int]:
    """Bytes one rank of :class:`ZeroEngine` holds: each tensor of n elements sharded to ceil(n/dp).

    Equals :func:`labutils.memory.model_state_bytes` (fp32 recipes) when every n divides by dp.
    """
    stage, numels = check_zero_stage(stage), _check_numels(numels)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    r = get_recipe(RECIPE_OF[optimizer])
    full = sum(numels)
    sharded = sum(shard_numel(n, dp) for n in numels)
    params = r.param_bytes * (sharded if stage >= 3 else full)
    grads = r.grad_bytes * (sharded if stage >= 2 else full)
    opt = r.optimizer_bytes * (sharded if stage >= 1 else full)
    return {"params": params, "grads": grads, "optimizer": opt, "total": params + grads + opt}


def predicted_comm_elements(numels: list[int], *, stage: int, dp: int) -> int:
    """Volume (ZeRO convention, elements) of one :class:`ZeroEngine` step, padding included.

    Equals :func:`labutils.memory.zero_comm_volume` when every tensor divides by dp.
    """
    stage, numels = check_zero_stage(stage), _check_numels(numels)
    padded = sum(shard_numel(n, dp) * dp for n in numels)
    if stage == 0:
        return 2 * sum(numels)  # all-reduce of the unpadded gradients
    return 3 * padded if stage == 3 else 2 * padded


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


def train_zero(run: ZeroRun, stage: int) -> dict:
    """Worker: train with :class:`ZeroEngine` at ``stage``; measure bytes held and communicated.

    Returns (per rank) ``losses`` (this rank's micro-batch loss per step, nats), ``params``
    (final, flattened), ``held`` (bytes after the last step, by category), ``predicted``
    (:func:`predicted_held_bytes`), ``comm`` (per step: volume in elements and bytes, ring bytes
    sent, volume by collective), ``predicted_comm_elements``, ``peak_gathered_bytes`` and
    ``padding_elements``.
    """
    rank, world, device = dist.get_rank(), dist.get_world_size(), rank_device()
    model = build_model(run.cfg, run.seed, device)
    numels = [p.numel() for p in model.parameters()]
    engine = ZeroEngine(model, stage, optimizer=run.optimizer, lr=run.lr)
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
