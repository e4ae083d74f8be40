"""Mixed-precision training: fp32 master weights, 16-bit compute, dynamic loss scaling (Chapter 9).

The recipe of Micikevicius et al. 2018 ("Mixed Precision Training", Sec. 3):

1. keep an fp32 **master copy** of the weights; each step, round it to the 16-bit compute
   format for the forward and backward passes (Sec. 3.1);
2. multiply the loss by a **loss scale** S before the backward pass, so that small gradients
   land in fp16's representable range instead of flushing to zero; divide the gradients by S
   before the fp32 update (Sec. 3.2). **Dynamic** loss scaling picks S automatically: halve it
   and skip the step when a gradient overflows to inf/NaN, double it after N clean steps
   (the scheme of ``torch.amp.GradScaler``, defaults S = 2^16, N = 2000);
3. keep numerically sensitive ops (softmax, cross-entropy, reductions) in fp32.

bf16 has fp32's exponent range, so it needs no loss scaling (Kalamkar et al. 2019; lecture
``004_6883ede614611647.txt``: "same dynamic range as float32 ... does not require dynamic loss
scale").

**What runs on a CPU here.** The forward and backward passes run in real fp16 (or bf16)
arithmetic on a copy of the model cast to that dtype: every activation, activation gradient
and weight gradient is stored in 16 bits, so underflow happens where it would on a GPU. Two
things differ from a GPU: CPU kernels may accumulate matmuls differently from tensor cores,
and nothing is faster (CPUs have no fast fp16 units). Like autocast, the cross-entropy is
computed in fp32 from the logits.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from labutils.model import TransformerConfig
from labutils.validate import integer, number, positive

COMPUTE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class DynamicLossScaler:
    """The loss scale S, adjusted from whether each step's gradients overflowed.

    * overflow (an inf or NaN gradient): skip the step, S ← S · ``backoff_factor``, and restart
      the count of clean steps;
    * otherwise take the step; after ``growth_interval`` clean steps in a row,
      S ← S · ``growth_factor``.

    The same rule, and the same defaults, as ``torch.amp.GradScaler`` (a test feeds both the
    same overflow sequence and compares the scales step by step).
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000) -> None:
        self.scale = positive("init_scale", init_scale)
        self.growth_factor = number("growth_factor", growth_factor, low=1.0, low_open=True)
        self.backoff_factor = number("backoff_factor", backoff_factor, low=0.0, high=1.0,
                                     low_open=True)
        self.growth_interval = integer("growth_interval", growth_interval, 1)
        self.clean_steps = 0  # consecutive steps without overflow since the last change of S

    def update(self, found_inf: bool) -> bool:
        """Adjust S after a step; returns True when the optimizer step should be taken."""
        if not isinstance(found_inf, (bool, np.bool_)):
            raise TypeError(f"found_inf must be a bool, got {type(found_inf).__name__}")
        if found_inf:
            self.scale *= self.backoff_factor
            self.clean_steps = 0
            return False
        self.clean_steps += 1
        if self.clean_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.clean_steps = 0
        return True


def _overflow_flags(found_inf: object) -> list[bool]:
    """``found_inf`` as a list of bools (one per step); a TypeError names anything else."""
    if isinstance(found_inf, (str, bytes)) or not isinstance(found_inf, Sequence):
        raise TypeError(f"found_inf must be a sequence of bools, got {type(found_inf).__name__}")
    for i, v in enumerate(found_inf):
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"found_inf[{i}] must be a bool, got {type(v).__name__} ({v!r})")
    return [bool(v) for v in found_inf]


def scale_trajectory(found_inf: Sequence[bool], **scaler_kwargs: float) -> list[float]:
    """S after each step of an overflow sequence, with :class:`DynamicLossScaler`."""
    s = DynamicLossScaler(**scaler_kwargs)
    out = []
    for inf in _overflow_flags(found_inf):
        s.update(inf)
        out.append(s.scale)
    return out


def gradscaler_trajectory(found_inf: Sequence[bool], **scaler_kwargs: float) -> list[float]:
    """S after each step of an overflow sequence, with ``torch.amp.GradScaler`` on the CPU.

    Each step hands GradScaler one parameter whose gradient is inf (overflow) or 1.0 (clean),
    and calls ``step`` and ``update`` as a training loop would.
    """
    flags = _overflow_flags(found_inf)
    DynamicLossScaler(**scaler_kwargs)  # same argument checks as ours, with clear messages
    scaler = torch.amp.GradScaler("cpu", **scaler_kwargs)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.0)
    out = []
    for inf in flags:
        opt.zero_grad()
        scaler.scale(p.sum()).backward()  # initialises the scale; the gradient is then replaced
        p.grad = torch.full_like(p, math.inf if inf else 1.0)
        scaler.step(opt)
        scaler.update()
        out.append(float(scaler.get_scale()))
    return out


def min_loss_scale(grad_magnitude: float, target: float) -> float:
    """Smallest power of two S with ``grad_magnitude`` · S >= ``target``.

    E.g. ``target = smallest_normal("fp16")`` = 2^-14 lifts a gradient into fp16's normal range
    (full 11-bit precision); ``target = smallest_subnormal("fp16")`` = 2^-24 merely keeps it
    from flushing to zero. Returns 1.0 when no scaling is needed.
    """
    g = positive("grad_magnitude", grad_magnitude)
    t = positive("target", target)
    return 2.0 ** max(0, math.ceil(math.log2(t / g)))


# ----------------------------------------------------------------------------------------------
# A real tiny training run
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixedPrecisionConfig:
    """One training run of the reference GPT with the mixed-precision recipe."""

    compute_dtype: str = "fp16"  # forward/backward dtype: "fp32", "fp16" or "bf16"
    loss_scaling: bool = True  # dynamic loss scaling (only meaningful for fp16)
    init_scale: float = 2.0**16  # GradScaler's default
    growth_interval: int = 20  # clean steps before S doubles (GradScaler: 2000; short runs here)
    grad_shift_binades: int = 0  # k: multiply the loss by 2^-k and the fp32 gradients by 2^k.
    # Exact in fp32 (powers of two), so an fp32 run is unchanged; in 16 bits it moves every
    # gradient k binades down, to the magnitudes of larger models' gradients
    steps: int = 60
    batch_size: int = 8  # sequences per step
    lr: float = 3e-3  # AdamW learning rate (constant)
    seed: int = 0  # initialisation and batch sampling

    def __post_init__(self) -> None:
        if not isinstance(self.compute_dtype, str) or self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, "
                             f"got {self.compute_dtype!r}")
        if not isinstance(self.loss_scaling, bool):
            raise TypeError(f"loss_scaling must be a bool, got {type(self.loss_scaling).__name__} "
                            f"({self.loss_scaling!r})")
        positive("init_scale", self.init_scale)
        integer("growth_interval", self.growth_interval, 1)
        integer("grad_shift_binades", self.grad_shift_binades, 0, 100)
        integer("steps", self.steps, 1)
        integer("batch_size", self.batch_size, 1)
        positive("lr", self.lr)
        integer("seed", self.seed, 0)


@dataclass
class MixedPrecisionRun:
    """What a run recorded, one entry per step."""

    losses: list[float] = field(default_factory=list)  # unscaled training loss (nats/token)
    zero_grad_fraction: list[float] = field(default_factory=list)  # share of 16-bit weight-
    # gradient entries that are exactly 0 (fp32 gradients of this model are almost never 0)
    scales: list[float] = field(default_factory=list)  # loss scale S used at this step
    skipped: list[bool] = field(default_factory=list)  # step skipped because of inf/NaN


def gpt_weight_gradients(model_cfg: TransformerConfig, streams: torch.Tensor, *,
                         batch_size: int = 8, seed: int = 0) -> torch.Tensor:
    """All weight-gradient entries (fp32, flattened) of one fp32 forward/backward of a fresh GPT.

    Chapter 9 compares their magnitudes with fp16's normal and subnormal ranges.
    """
    from labutils.nn.gpt import GPT
    from labutils.train import sample_batch

    torch.manual_seed(seed)
    model = GPT(model_cfg)
    x, y = sample_batch(streams, batch_size, model_cfg.seq_len, torch.Generator().manual_seed(seed))
    logits, _ = model(x)  # (B, T, V)
    F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def train_mixed_precision(model_cfg: TransformerConfig, streams: torch.Tensor,
                          cfg: MixedPrecisionConfig) -> MixedPrecisionRun:
    """Train a fresh GPT with fp32 master weights and ``cfg.compute_dtype`` compute.

    Each step: round the fp32 master weights into the compute copy; forward in the compute
    dtype; cross-entropy in fp32; backward of loss · S · 2^-k (S = loss scale, k =
    ``grad_shift_binades``); read the 16-bit gradients, skip the step if any is inf/NaN (with
    loss scaling); otherwise divide by S · 2^-k in fp32 and take an AdamW step on the master
    weights. ``streams`` are token ids (S, L), e.g. from :mod:`labutils.markov`.
    """
    from labutils.nn.gpt import GPT
    from labutils.train import sample_batch

    torch.manual_seed(cfg.seed)
    master = GPT(model_cfg)  # fp32 master weights
    work = copy.deepcopy(master).to(COMPUTE_DTYPES[cfg.compute_dtype])  # compute copy
    opt = torch.optim.AdamW(master.parameters(), lr=cfg.lr, weight_decay=0.0)
    scaler = (DynamicLossScaler(cfg.init_scale, growth_interval=cfg.growth_interval)
              if cfg.loss_scaling else None)
    shift = 2.0 ** -cfg.grad_shift_binades
    gen = torch.Generator().manual_seed(cfg.seed)
    run = MixedPrecisionRun()
    for _ in range(cfg.steps):
        with torch.no_grad():
            for pw, pm in zip(work.parameters(), master.parameters()):
                pw.copy_(pm)  # round fp32 → compute dtype
        work.zero_grad(set_to_none=True)
        x, y = sample_batch(streams, cfg.batch_size, model_cfg.seq_len, gen)
        logits, _ = work(x)  # (B, T, V) in the compute dtype
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())  # fp32, as autocast
        scale = scaler.scale if scaler else 1.0
        (loss * (scale * shift)).backward()
        grads = [p.grad for p in work.parameters()]
        n_entries = sum(g.numel() for g in grads)
        run.zero_grad_fraction.append(sum(int((g == 0).sum()) for g in grads) / n_entries)
        found_inf = not all(bool(torch.isfinite(g).all()) for g in grads)
        take_step = scaler.update(found_inf) if scaler else True
        run.losses.append(float(loss.detach()))
        run.scales.append(scale)
        run.skipped.append(not take_step)
        if not take_step:
            continue
        for pm, g in zip(master.parameters(), grads):
            pm.grad = g.float() / (scale * shift)  # unscale in fp32
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run
