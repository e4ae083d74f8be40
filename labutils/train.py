"""A small, readable training loop for the shared reference GPT (:class:`labutils.nn.GPT`).

Chapter 2 (scaling laws) trains sweeps of tiny models with it; any chapter that needs "train this
config on these tokens for D tokens" can reuse it. The recipe is the one Chinchilla assumes
(Hoffmann et al. 2022, Sec. 3): AdamW, a linear warm-up, then a cosine decay whose length matches
the number of training tokens, one pass over fresh data.

Usage::

    from labutils.model import tiny_config
    from labutils.train import TrainConfig, train
    result = train(tiny_config(), TrainConfig(tokens=200_000), tokens)  # tokens: LongTensor
    result.eval_loss, result.flops

Units: ``tokens`` counts tokens seen (predictions made: batch_size · seq_len per step), losses are
mean cross-entropy in nats/token, FLOPs use C = 6·N·D (Kaplan et al. 2020, Sec. 2.1; the
lecture 000_f52c65b7512ce437.txt), which ignores attention's T-dependent FLOPs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from labutils.flops import training_flops
from labutils.model import TransformerConfig, count_params
from labutils.mup import OptimizerHyperparams, Parametrization, make_adamw
from labutils.schedules import cosine
from labutils.validate import integer, number


@dataclass(frozen=True)
class TrainConfig:
    """How to train: budget, optimiser and schedule. Sequence length comes from the model config."""

    tokens: int  # D: training tokens (predictions) to see; steps = ceil(D / (batch_size·seq_len))
    batch_size: int = 32  # sequences per step
    lr: float = 3e-3  # peak AdamW learning rate (tiny models tolerate large rates)
    min_lr_ratio: float = 0.1  # cosine decays to lr·min_lr_ratio (Chinchilla decays 10×, Sec. 3)
    warmup_frac: float = 0.05  # fraction of the steps spent in linear warm-up
    weight_decay: float = 0.1  # AdamW decoupled weight decay (not applied to biases/norms)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas (GPT-3, Chinchilla)
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    eval_batches: int = 8  # batches of held-out windows for the eval loss
    log_every: int = 0  # record the training loss every this many steps; 0 picks ~50 points
    seed: int = 0  # seeds the initialisation and the batch sampling
    threads: int = 0  # torch intra-op threads during training; 0 leaves torch's setting alone
    progress: bool = True  # show a tqdm bar
    label: str = field(default="", compare=False)  # text for the progress bar

    def __post_init__(self) -> None:
        integer("tokens", self.tokens, 1)
        integer("batch_size", self.batch_size, 1)
        number("lr", self.lr, low=0, high=10, low_open=True)
        number("min_lr_ratio", self.min_lr_ratio, low=0, high=1)
        number("warmup_frac", self.warmup_frac, low=0, high=1)
        number("weight_decay", self.weight_decay, low=0)
        if len(self.betas) != 2:
            raise ValueError(f"betas must be a pair, got {self.betas!r}")
        for i, b in enumerate(self.betas):
            number(f"betas[{i}]", b, low=0, high=1)
        number("grad_clip", self.grad_clip, low=0)
        integer("eval_batches", self.eval_batches, 1)
        integer("log_every", self.log_every, 0)
        integer("seed", self.seed, 0)
        integer("threads", self.threads, 0)


@dataclass(frozen=True)
class TrainResult:
    """What a run measured. Losses in nats/token; ``flops`` = 6·n_params·tokens_seen."""

    eval_loss: float  # mean loss on held-out windows after training
    train_losses: list[tuple[int, float]]  # (tokens seen, training-batch loss) along the run
    n_params: int  # N, all parameters (embeddings included, as Hoffmann et al. count them)
    tokens_seen: int  # D actually trained on: steps · batch_size · seq_len
    steps: int
    flops: float  # C = 6·N·D (lecture 000_f52c65b7512ce437.txt)
    wall_s: float  # training wall-clock time, seconds
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)  # trained GPT


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine to lr·min_lr_ratio."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    total_steps = integer("total_steps", total_steps, 1)
    warmup = max(1, round(cfg.warmup_frac * total_steps)) if cfg.warmup_frac > 0 else 0
    return cosine(step, total_steps, peak_lr=cfg.lr, warmup_steps=min(warmup, total_steps),
                  min_lr_ratio=cfg.min_lr_ratio)  # the formula lives in labutils.schedules


def _as_streams(tokens: torch.Tensor, name: str, seq_len: int, vocab_size: int) -> torch.Tensor:
    """Check a 1-D stream or 2-D (streams, length) integer tensor; return it as 2-D."""
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(tokens).__name__}")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool or tokens.is_complex():
        raise TypeError(f"{name} must hold integer token ids, got dtype {tokens.dtype}")
    if tokens.ndim == 1:
        tokens = tokens[None, :]
    if tokens.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (streams, length), got shape {tuple(tokens.shape)}")
    if tokens.shape[1] < seq_len + 1:
        raise ValueError(f"{name} streams must hold at least seq_len + 1 = {seq_len + 1} tokens, "
                         f"got {tokens.shape[1]}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} ids must be in [0, {vocab_size - 1}] (vocab_size), got [{lo}, {hi}]")
    return tokens


def sample_batch(streams: torch.Tensor, batch_size: int, seq_len: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows from ``streams`` (S, L): inputs x and next-token targets y, each (B, T).

    ``batch_size`` >= 1 windows of ``seq_len`` + 1 tokens, 1 <= ``seq_len`` <= L − 1.
    """
    if not isinstance(streams, torch.Tensor) or streams.ndim != 2:
        raise TypeError(f"streams must be a 2-D torch.Tensor of token ids (streams, length), got "
                        f"{type(streams).__name__} {tuple(getattr(streams, 'shape', ()))}")
    S, L = streams.shape
    integer("batch_size", batch_size, 1)
    integer("seq_len", seq_len, 1, L - 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    rows = torch.randint(S, (batch_size,), generator=generator)
    starts = torch.randint(L - seq_len, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(seq_len + 1)  # (B, T+1)
    window = streams[rows[:, None], idx].long()  # (B, T+1)
    return window[:, :-1], window[:, 1:]


@torch.no_grad()
def evaluate(model: torch.nn.Module, streams: torch.Tensor, batch_size: int, n_batches: int,
             seed: int = 12345) -> float:
    """Mean loss (nats/token) of ``model`` on ``n_batches`` fixed random windows of ``streams``."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    integer("n_batches", n_batches, 1)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    seq_len = model.cfg.seq_len
    total = 0.0
    for _ in range(n_batches):
        x, y = sample_batch(streams, batch_size, seq_len, gen)
        total += float(model(x, y)[1])
    model.train(was_training)
    return total / n_batches


def decay_param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay matrices (ndim >= 2) by ``weight_decay``; leave biases and
    norm scales alone (GPT-2/nanoGPT habit)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float) -> None:
    """One update: zero the gradients, backpropagate ``loss``, clip the global gradient norm at
    ``grad_clip`` (0: no clipping) and step the optimizer."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def train(model_cfg: TransformerConfig, train_cfg: TrainConfig, tokens: torch.Tensor,
          eval_tokens: torch.Tensor | None = None, *,
          lr_fn: Callable[[int, int], float] | None = None,
          parametrization: Parametrization | None = None) -> TrainResult:
    """Train a fresh :class:`labutils.nn.GPT` on ``tokens`` and measure its held-out loss.

    ``tokens`` and ``eval_tokens`` are integer tensors, 1-D (one stream) or 2-D (independent
    streams; windows never cross a stream boundary). Batches are random windows of
    ``model_cfg.seq_len + 1`` tokens. Without ``eval_tokens`` the eval loss is measured on
    ``tokens`` (fine for a source you can sample without repetition, misleading otherwise).
    ``lr_fn(step, total_steps)`` replaces the default schedule (:func:`lr_at`, a cosine) with any
    of :mod:`labutils.schedules` (chapter 11 compares cosine and WSD with it).
    ``parametrization`` (a :class:`labutils.mup.Parametrization`, chapter 10) builds the GPT under
    it and AdamW with per-layer groups (:func:`labutils.mup.param_groups`); the schedule then
    scales every group's own peak LR by the same factor.
    """
    from labutils.nn import GPT  # the nn package imports torch.nn; keep module import light

    if not isinstance(model_cfg, TransformerConfig):
        raise TypeError(f"model_cfg must be a TransformerConfig, got {type(model_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise TypeError(f"train_cfg must be a TrainConfig, got {type(train_cfg).__name__}")
    T = model_cfg.seq_len
    streams = _as_streams(tokens, "tokens", T, model_cfg.vocab_size)
    eval_streams = streams if eval_tokens is None else _as_streams(
        eval_tokens, "eval_tokens", T, model_cfg.vocab_size)

    old_threads = torch.get_num_threads()
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    try:
        torch.manual_seed(train_cfg.seed)
        model = GPT(model_cfg, parametrization=parametrization)
        n_params = count_params(model_cfg)
        if parametrization is None:
            opt = torch.optim.AdamW(decay_param_groups(model, train_cfg.weight_decay), lr=train_cfg.lr,
                                    betas=train_cfg.betas)
        else:
            opt = make_adamw(model, OptimizerHyperparams(
                lr=train_cfg.lr, betas=train_cfg.betas, weight_decay=train_cfg.weight_decay))
        tokens_per_step = train_cfg.batch_size * T
        steps = math.ceil(train_cfg.tokens / tokens_per_step)
        log_every = train_cfg.log_every or max(1, steps // 50)
        gen = torch.Generator().manual_seed(train_cfg.seed)
        history: list[tuple[int, float]] = []

        from tqdm.auto import tqdm

        bar = tqdm(range(steps), desc=train_cfg.label or f"N={n_params:,}", leave=False,
                   disable=not train_cfg.progress)
        t0 = time.perf_counter()
        model.train()
        for step in bar:
            lr = lr_at(step, steps, train_cfg) if lr_fn is None else lr_fn(step, steps)
            for group in opt.param_groups:
                group["lr"] = lr if parametrization is None else group["base_lr"] * lr / train_cfg.lr
            x, y = sample_batch(streams, train_cfg.batch_size, T, gen)  # (B, T) each
            _, loss = model(x, y)
            optimizer_step(model, opt, loss, train_cfg.grad_clip)
            if step % log_every == 0 or step == steps - 1:
                history.append(((step + 1) * tokens_per_step, loss.item()))
                bar.set_postfix(loss=f"{history[-1][1]:.3f}")
        wall_s = time.perf_counter() - t0
        eval_loss = evaluate(model, eval_streams, train_cfg.batch_size, train_cfg.eval_batches)
    finally:
        torch.set_num_threads(old_threads)
    tokens_seen = steps * tokens_per_step
    return TrainResult(
        eval_loss=eval_loss,
        train_losses=history,
        n_params=n_params,
        tokens_seen=tokens_seen,
        steps=steps,
        flops=training_flops(n_params, tokens_seen),  # C = 6ND (Kaplan et al. 2020, Sec. 2.1)
        wall_s=wall_s,
        model=model,
    )
