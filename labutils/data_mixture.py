"""Data mixtures and data stages: sampling domains by weight, and changing the weights mid-run
(Chapter 11, the training recipe).

A pretraining corpus is a blend of **domains** (web, code, books, papers, ...). A mixture gives
each domain a **weight**, the probability that the next training sequence comes from it; small
high-quality domains are up-weighted (seen for several epochs) and large noisy ones
down-weighted. **Data stages** change the weights during the run: Lecture 1, *Pretraining Large
Language Models* ("Moving from Cosine to Warmup-Stable-Decay (WSD): More flexibility, e.g. data
stages!"; "Training: Data Stages"). MiniCPM (Hu et al. 2024, Sec. 5, "Two Stage
Pre-training Strategy") adds high-quality data during WSD's decay phase; Llama 3 (Dubey et al.
2024, Sec. 3.4.3, "Annealing") up-samples high-quality sources while annealing the LR to 0.

* :func:`normalize_weights` checks a weight vector and scales it to sum to 1.
* :func:`sample_mixed_batch` is the sampler: each of the ``batch_size`` windows first draws its
  domain by weight, then a random window of that domain.
* :class:`DataStage` and :func:`stage_weights` say which weights apply at which step.
* :func:`domain_epochs` says how many passes over each domain a mixture implies.
* :func:`train_on_mixture` trains the shared tiny GPT (:class:`labutils.nn.GPT`) with data whose
  mixture may change every step, and records the held-out loss of each evaluation set along the
  way (data-quality ablations use it with one domain per run, :mod:`labutils.data_ablation`).

Units: losses are mean cross-entropy in nats/token; "tokens" count predictions (batch_size ·
seq_len per step).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from labutils.model import TransformerConfig, count_params
from labutils.train import TrainConfig, decay_param_groups, evaluate, optimizer_step, sample_batch
from labutils.validate import fraction, integer, number


def normalize_weights(weights: Sequence[float], n_domains: int | None = None) -> np.ndarray:
    """``weights`` as a float64 array that sums to 1 (one non-negative weight per domain).

    ``n_domains`` (optional) is the number of domains the weights must match.
    """
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence | np.ndarray):
        raise TypeError(f"weights must be a sequence of numbers, got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError("weights must hold at least one weight, got an empty sequence")
    w = np.array([number(f"weights[{i}]", x, low=0) for i, x in enumerate(weights)], dtype=float)
    if n_domains is not None and len(w) != n_domains:
        raise ValueError(f"weights must have one entry per domain ({n_domains}), got {len(w)}")
    if w.sum() <= 0:
        raise ValueError(f"weights must not all be 0, got {list(weights)}")
    return w / w.sum()


def _domain_streams(domains: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Each domain as a 2-D (streams, length) integer tensor."""
    if isinstance(domains, torch.Tensor) or not isinstance(domains, Sequence) or not domains:
        raise TypeError("domains must be a non-empty list of token tensors, one per domain")
    out = []
    for i, d in enumerate(domains):
        if not isinstance(d, torch.Tensor) or d.dtype.is_floating_point or d.dtype == torch.bool:
            raise TypeError(f"domains[{i}] must be an integer torch.Tensor of token ids")
        if d.ndim not in (1, 2):
            raise ValueError(f"domains[{i}] must be 1-D or 2-D (streams, length), "
                             f"got shape {tuple(d.shape)}")
        out.append(d[None, :] if d.ndim == 1 else d)
    return out


def sample_mixed_batch(domains: Sequence[torch.Tensor], weights: Sequence[float],
                       batch_size: int, seq_len: int, generator: torch.Generator
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch drawn from a mixture: inputs x (B, T), targets y (B, T), domain of each row (B,).

    Each of the ``batch_size`` rows draws its domain with probability ``weights[d]`` (normalised
    by :func:`normalize_weights`), then a random window of ``seq_len`` + 1 tokens of that domain
    (:func:`labutils.train.sample_batch`). Rows of one domain are drawn together, then the rows
    are put back in the order of the domain draws.
    """
    streams = _domain_streams(domains)
    w = normalize_weights(weights, len(streams))
    integer("batch_size", batch_size, 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    domain = torch.multinomial(torch.as_tensor(w), batch_size, replacement=True,
                               generator=generator)  # (B,)
    x = torch.empty(batch_size, seq_len, dtype=torch.long)
    y = torch.empty(batch_size, seq_len, dtype=torch.long)
    for d in range(len(streams)):
        rows = (domain == d).nonzero().flatten()
        if len(rows):
            x[rows], y[rows] = sample_batch(streams[d], len(rows), seq_len, generator)
    return x, y, domain


@dataclass(frozen=True)
class DataStage:
    """One stage of a run: from ``start_frac`` of the steps on, sample with ``weights``."""

    start_frac: float  # fraction of the run's steps at which this stage begins, in [0, 1)
    weights: tuple[float, ...]  # one mixture weight per domain (normalised when used)

    def __post_init__(self) -> None:
        if number("start_frac", self.start_frac, low=0, high=1) == 1:
            raise ValueError("start_frac must be a finite number in [0, 1), got 1")
        object.__setattr__(self, "weights", tuple(float(x) for x in normalize_weights(
            list(self.weights))))


def stage_weights(step: int, total_steps: int, stages: Sequence[DataStage]) -> tuple[float, ...]:
    """The mixture weights in force at ``step`` (0-based) of a run of ``total_steps``.

    ``stages`` must start with a stage at ``start_frac = 0`` and be sorted by ``start_frac``;
    stage i applies from step ``round(start_frac_i · total_steps)`` to the next stage's start.
    """
    total_steps = integer("total_steps", total_steps, 1)
    integer("step", step, 0, total_steps - 1)
    if not stages or not all(isinstance(s, DataStage) for s in stages):
        raise TypeError("stages must be a non-empty sequence of DataStage")
    starts = [s.start_frac for s in stages]
    if starts[0] != 0 or starts != sorted(starts):
        raise ValueError(f"stages must start at start_frac 0 and be sorted, got {starts}")
    if len({len(s.weights) for s in stages}) != 1:
        raise ValueError("every stage must give one weight per domain (same length)")
    current = stages[0]
    for s in stages:
        if step >= round(s.start_frac * total_steps):
            current = s
    return current.weights


def domain_epochs(domain_tokens: Sequence[float], weights: Sequence[float],
                  total_tokens: float) -> np.ndarray:
    """Passes over each domain when ``total_tokens`` are drawn with mixture ``weights``.

    Domain d contributes ``weights[d] · total_tokens`` tokens out of its ``domain_tokens[d]``
    unique ones: an epoch count above 1 means the domain is repeated (up-sampled).
    """
    w = normalize_weights(weights)
    if len(domain_tokens) != len(w):
        raise ValueError(f"domain_tokens must have one entry per weight ({len(w)}), "
                         f"got {len(domain_tokens)}")
    sizes = np.array([number(f"domain_tokens[{i}]", x, low=0, low_open=True)
                      for i, x in enumerate(domain_tokens)])
    total = number("total_tokens", total_tokens, low=0)
    return w * total / sizes


@dataclass(frozen=True)
class MixtureRun:
    """What :func:`train_on_mixture` measured. Losses in nats/token."""

    eval_curves: dict[str, list[tuple[int, float]]]  # eval set -> (step, held-out loss) points
    final_loss: dict[str, float]  # eval set -> held-out loss after the last step
    domain_tokens: tuple[int, ...]  # tokens trained on from each domain
    steps: int
    n_params: int
    model: torch.nn.Module


def train_on_mixture(model_cfg: TransformerConfig, domains: Sequence[torch.Tensor],
                     weights: Sequence[float] | Callable[[int, int], Sequence[float]],
                     steps: int, *, lr_fn: Callable[[int, int], float],
                     eval_sets: Mapping[str, torch.Tensor], eval_every: int = 0,
                     eval_batches: int = 4, batch_size: int = 16, weight_decay: float = 0.1,
                     grad_clip: float = 1.0, seed: int = 0, threads: int = 1,
                     init_model: torch.nn.Module | None = None) -> MixtureRun:
    """Train a fresh tiny GPT for ``steps`` steps on a mixture of ``domains``.

    ``init_model`` (a trained :class:`labutils.nn.GPT` for ``model_cfg``) continues training a
    copy of that model instead (continued pre-training, domain adaptation; the original is left
    untouched). The optimiser state starts afresh.

    ``weights`` is one weight per domain, or a function ``(step, steps) -> weights`` (data stages:
    e.g. ``lambda s, n: stage_weights(s, n, stages)``). ``lr_fn(step, steps)`` is the LR schedule
    (any of :mod:`labutils.schedules`). Every ``eval_every`` steps (0: only at the end) the mean
    loss on ``eval_batches`` fixed batches of each held-out set in ``eval_sets`` is recorded
    (:func:`labutils.train.evaluate`). The optimiser is AdamW (betas 0.9, 0.95) with
    ``weight_decay`` on matrices only and gradient clipping at ``grad_clip``, as in
    :func:`labutils.train.train`; the same seed gives the same initialisation and batches.
    """
    from labutils.nn import GPT

    streams = _domain_streams(domains)
    steps = integer("steps", steps, 1)
    integer("eval_every", eval_every, 0)
    integer("eval_batches", eval_batches, 1)
    integer("batch_size", batch_size, 1)
    integer("seed", seed, 0)
    integer("threads", threads, 0)
    number("grad_clip", grad_clip, low=0)
    fraction("weight_decay", weight_decay)
    if not callable(lr_fn):
        raise TypeError("lr_fn must be a function (step, total_steps) -> learning rate")
    if not isinstance(eval_sets, Mapping) or not eval_sets:
        raise TypeError("eval_sets must be a non-empty dict: name -> held-out token tensor")
    weight_fn = weights if callable(weights) else (lambda step, total: weights)
    T = model_cfg.seq_len
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        if init_model is None:
            model = GPT(model_cfg)
        elif isinstance(init_model, GPT) and init_model.cfg == model_cfg:
            model = copy.deepcopy(init_model)
        else:
            raise TypeError("init_model must be a labutils.nn.GPT built from model_cfg, got "
                            f"{type(init_model).__name__}")
        opt = torch.optim.AdamW(decay_param_groups(model, weight_decay), lr=lr_fn(0, steps),
                                betas=TrainConfig.betas)
        gen = torch.Generator().manual_seed(seed)
        curves: dict[str, list[tuple[int, float]]] = {name: [] for name in eval_sets}
        seen = torch.zeros(len(streams), dtype=torch.long)

        def record(step: int) -> None:
            for name, held_out in eval_sets.items():
                curves[name].append((step, evaluate(model, held_out, batch_size, eval_batches)))

        for step in range(steps):
            if eval_every and step % eval_every == 0:
                record(step)
            for group in opt.param_groups:
                group["lr"] = lr_fn(step, steps)
            x, y, domain = sample_mixed_batch(streams, weight_fn(step, steps), batch_size, T, gen)
            seen += torch.bincount(domain, minlength=len(streams)) * T
            optimizer_step(model, opt, model(x, y)[1], grad_clip)
        record(steps)
    finally:
        torch.set_num_threads(old_threads)
    return MixtureRun(eval_curves=curves, final_loss={k: v[-1][1] for k, v in curves.items()},
                      domain_tokens=tuple(int(t) for t in seen), steps=steps,
                      n_params=count_params(model_cfg), model=model)
