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

The workers that train it against one process, PyTorch's DDP and FSDP2 are
:mod:`labutils.parallel.data.zero_workers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.func import functional_call

from labutils.memory import check_zero_stage, get_recipe, shard_numel
from labutils.validate import integer

OPTIMIZERS = ("adam", "sgd")
RECIPE_OF = {"adam": "fp32_adam", "sgd": "sgd"}  # all measured runs are fp32 on CPU

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
            dist.all_gather_single(buf, shard.detach(), group=self.engine.group)
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
            dist.all_gather_single(alias, shard.detach(), group=self.engine.group)
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
            dist.reduce_scatter_single(shard, full, group=self.engine.group)
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
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 group: dist.ProcessGroup | None = None) -> None:
        self.stage = check_zero_stage(stage)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {lr!r}")
        if not dist.is_initialized():
            raise RuntimeError("ZeroEngine needs an initialised process group (use launch)")
        self.model, self.optimizer, self.lr, self.betas, self.eps = model, optimizer, lr, betas, eps
        # the data-parallel group the states are sharded over (default: the whole world)
        self.group = group
        self.rank, self.world = dist.get_rank(group), dist.get_world_size(group)
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
        dist.reduce_scatter_single(shard, full, group=self.group)
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
                dist.all_reduce(p.grad, group=self.group)
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
            dist.all_gather_single(full, p_shard, group=self.group)
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
            dist.all_gather_single(buf, shard.detach(), group=self.group)
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
