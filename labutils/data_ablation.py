"""Data-quality ablations at toy scale: build candidate corpora, train one small model on each
for the same token budget, compare held-out loss (Chapter 11, the training recipe).

Lecture 1, *Pretraining Large Language Models* ("Dataset: evaluate data quality") judges a
dataset by training small models on it: "train 1-2B size models on 30GT (chinchilla optimal)"
and compare them; the FineWeb authors "ablate all of the design choices" of their pipeline this
way (Penedo et al. 2024, abstract), and Llama 3 judges small datasets by annealing on them
(Dubey et al. 2024, Sec. 3.1.3). Here the models have tens of thousands of parameters and see
about 10^5 tokens, and the "datasets" are made from the order-1
Markov source of chapter 2 (:mod:`labutils.markov`), whose entropy rate is the best loss any
model can reach:

* ``clean``: streams sampled from the source;
* :func:`with_junk_streams`: the same number of streams, a share of them replaced by junk
  (uniformly random tokens, the stand-in for boilerplate and spam a quality filter removes);
* :func:`with_duplicates`: the same number of streams, but only a share of them unique and the
  rest copies (what deduplication removes);
* a filtered corpus: the junk streams dropped and the clean rest read again to fill the budget
  (:func:`repeat_to`): filtering costs unique tokens.

Every candidate holds the same number of tokens, and :func:`run_ablation` gives every model the
same steps, batches of the same size and the same seed; only the data differ. Held-out loss is
measured on clean streams the models never trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from labutils.data_mixture import MixtureRun, train_on_mixture
from labutils.model import TransformerConfig
from labutils.validate import fraction, integer


def _streams(tokens: object) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise TypeError("tokens must be a 2-D torch.Tensor of token ids (streams, length)")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise TypeError(f"tokens must hold integer token ids, got dtype {tokens.dtype}")
    return tokens


def with_junk_streams(tokens: torch.Tensor, junk_frac: float, vocab_size: int,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``round(junk_frac · S)`` of the S streams by uniformly random tokens.

    Returns the new (S, L) corpus and a boolean mask (S,) of the junk streams (the labels a
    perfect quality filter would reproduce). Token ids are drawn from [0, vocab_size).
    """
    tokens = _streams(tokens)
    fraction("junk_frac", junk_frac)
    integer("vocab_size", vocab_size, 2)
    integer("seed", seed, 0)
    S, L = tokens.shape
    gen = torch.Generator().manual_seed(seed)
    junk = torch.zeros(S, dtype=torch.bool)
    junk[torch.randperm(S, generator=gen)[: round(junk_frac * S)]] = True
    out = tokens.clone()
    out[junk] = torch.randint(vocab_size, (int(junk.sum()), L), generator=gen, dtype=tokens.dtype)
    return out, junk


def repeat_to(tokens: torch.Tensor, n_streams: int, seed: int = 0) -> torch.Tensor:
    """Fill a corpus of ``n_streams`` streams with copies of the S streams of ``tokens``.

    Each stream appears ``n_streams / S`` times (give or take one), in shuffled order: what a
    data loader does when a corpus is smaller than the budget and is read for several epochs.
    """
    tokens = _streams(tokens)
    integer("n_streams", n_streams, 1)
    integer("seed", seed, 0)
    S = tokens.shape[0]
    gen = torch.Generator().manual_seed(seed)
    copies = torch.arange(S).repeat(-(-n_streams // S))[:n_streams]  # (n_streams,)
    return tokens[copies[torch.randperm(n_streams, generator=gen)]]


def with_duplicates(tokens: torch.Tensor, unique_frac: float, seed: int = 0) -> torch.Tensor:
    """Keep ``max(1, round(unique_frac · S))`` random streams of the S and fill the corpus back
    to S streams with copies of them (:func:`repeat_to`): same shape, so same token count.
    """
    tokens = _streams(tokens)
    n_unique = max(1, round(fraction("unique_frac", unique_frac) * tokens.shape[0]))
    integer("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    kept = torch.randperm(tokens.shape[0], generator=gen)[:n_unique]
    return repeat_to(tokens[kept], tokens.shape[0], seed)


def unique_stream_count(tokens: torch.Tensor) -> int:
    """Number of distinct streams (rows) in a (S, L) corpus: what exact dedup would keep."""
    return int(torch.unique(_streams(tokens), dim=0).shape[0])


def run_ablation(candidates: Mapping[str, torch.Tensor], held_out: torch.Tensor,
                 model_cfg: TransformerConfig, steps: int, *,
                 lr_fn: Callable[[int, int], float], eval_every: int = 10, batch_size: int = 16,
                 seed: int = 0) -> dict[str, MixtureRun]:
    """Train one fresh model per candidate corpus, all with the same budget and seed.

    Each run sees ``steps · batch_size · seq_len`` tokens of its candidate and records its loss on
    ``held_out`` every ``eval_every`` steps (:func:`labutils.data_mixture.train_on_mixture`, one
    domain). Returns candidate name -> :class:`labutils.data_mixture.MixtureRun`.
    """
    if not isinstance(candidates, Mapping) or not candidates:
        raise TypeError("candidates must be a non-empty dict: name -> (S, L) token tensor")
    sizes = {name: _streams(t).numel() for name, t in candidates.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"candidates must hold the same number of tokens, got {sizes}")
    return {name: train_on_mixture(model_cfg, [tokens], [1.0], steps, lr_fn=lr_fn,
                                   eval_sets={"held-out": held_out}, eval_every=eval_every,
                                   batch_size=batch_size, seed=seed)
            for name, tokens in candidates.items()}
