"""A random order-k Markov "language" whose entropy rate is known exactly (nats/token).

Chapter 2 (scaling laws) trains tiny GPTs on text sampled from this source. The Chinchilla law
``L(N, D) = E + A/N^alpha + B/D^beta`` says E is the loss of "an ideal generative process"; for
real text nobody knows it, but for this source it is computed here exactly, so a fitted E can be
checked against the truth.

The source: ``V = vocab_size`` tokens, and a context of the previous ``order`` tokens. Each of the
``V**order`` contexts has its own next-token distribution, drawn from a Dirichlet distribution
centred on a Zipf law (so that, as in natural language, a few tokens are frequent and many are
rare). Everything derives from the transition table ``probs`` of shape ``(V**order, V)``; a
context ``(x_{t-k}, ..., x_{t-1})`` has row index ``sum_j x_{t-k+j} * V**(k-1-j)`` (base-V digits,
oldest token first).

Exact quantities (all in nats, natural log):

* :meth:`MarkovSource.entropy_rate` ``H = sum_c pi(c) H(P(.|c))``, with ``pi`` the stationary
  distribution over contexts (Cover & Thomas, *Elements of Information Theory*, Thm. 4.2.4).
* :meth:`MarkovSource.conditional_entropy` ``H(X_t | previous j tokens)`` for ``j <= order``:
  the best loss of a model that sees only j tokens of context (j = 0: unigram).
* :meth:`MarkovSource.window_entropy` the best *mean* loss over a training window of
  ``seq_len`` positions: the first ``order`` positions lack full context, so this floor sits a
  little above the entropy rate. It is the E a GPT trained on windows can approach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from labutils.validate import integer, positive


def _row_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of a (..., V) probability array (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


@dataclass(frozen=True)
class MarkovConfig:
    """Parameters of a random order-k Markov source (see :func:`make_source`)."""

    vocab_size: int = 256  # V, tokens; the model's vocabulary must be at least this large
    order: int = 1  # k, tokens of context the true process uses (V**k contexts)
    concentration: float = 1.0  # Dirichlet total mass per row; smaller = peakier rows, lower H
    zipf_exponent: float = 1.0  # the Dirichlet rows are centred on p(v) ∝ 1/(rank+1)^s
    seed: int = 0  # seeds the transition table (sampling has its own seed)

    def __post_init__(self) -> None:
        integer("vocab_size", self.vocab_size, 2, 4096)
        integer("order", self.order, 1, 8)
        if self.vocab_size**self.order > 2**20:
            raise ValueError(
                f"vocab_size**order must be <= 2**20 contexts, got {self.vocab_size}**{self.order}"
            )
        positive("concentration", self.concentration)
        if isinstance(self.zipf_exponent, bool) or not isinstance(self.zipf_exponent, (int, float)):
            raise TypeError(f"zipf_exponent must be a number, got {self.zipf_exponent!r}")
        if not (math.isfinite(self.zipf_exponent) and self.zipf_exponent >= 0):
            raise ValueError(f"zipf_exponent must be >= 0 and finite, got {self.zipf_exponent}")
        integer("seed", self.seed, 0)


@dataclass(frozen=True, eq=False)
class MarkovSource:
    """An order-k Markov chain over ``vocab_size`` tokens, given by its transition table.

    ``probs`` has shape ``(V**order, V)``; row ``c`` is ``P(next token | context c)``.
    Build a random one with :func:`make_source`.
    """

    probs: np.ndarray  # (V**k, V), float64, rows sum to 1
    order: int
    stationary: np.ndarray = field(init=False, repr=False)  # (V**k,), stationary context law

    def __post_init__(self) -> None:
        p = np.asarray(self.probs, dtype=np.float64)
        integer("order", self.order, 1, 8)
        if p.ndim != 2:
            raise ValueError(f"probs must be 2-D (V**order, V), got shape {p.shape}")
        V = p.shape[1]
        if p.shape[0] != V**self.order:
            raise ValueError(
                f"probs must have V**order = {V}**{self.order} rows, got {p.shape[0]}"
            )
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-9):
            raise ValueError("probs rows must be non-negative and sum to 1")
        object.__setattr__(self, "probs", p)
        object.__setattr__(self, "stationary", self._stationary())

    @property
    def vocab_size(self) -> int:
        return self.probs.shape[1]

    def _stationary(self, tol: float = 1e-15, max_iter: int = 100_000) -> np.ndarray:
        """Stationary law of the context chain, by power iteration to machine precision.

        The context chain moves from (x_1..x_k) to (x_2..x_k, y) with probability P(y | x_1..x_k).
        """
        V, k = self.vocab_size, self.order
        pi = np.full(V**k, 1.0 / V**k)
        for _ in range(max_iter):
            joint = pi[:, None] * self.probs  # (V**k, V): P(context, next)
            # drop the oldest token: sum over x_1, then (x_2..x_k, y) is the new context
            new = joint.reshape(V, V ** (k - 1) * V).sum(axis=0)  # (V**k,)
            if np.abs(new - pi).sum() < tol:
                return new / new.sum()
            pi = new
        raise RuntimeError("stationary distribution did not converge; is the chain ergodic?")

    def entropy_rate(self) -> float:
        """Exact entropy rate H = sum_c pi(c)·H(P(.|c)), in nats per token."""
        return float(self.stationary @ _row_entropy(self.probs))

    def conditional_entropy(self, context: int) -> float:
        """H(X_t | the previous ``context`` tokens) under stationarity, in nats.

        ``context = 0`` gives the unigram entropy, ``context = order`` the entropy rate; larger
        contexts change nothing (the process is order-k). This is the lowest loss a predictor
        that sees only ``context`` tokens can reach.
        """
        integer("context", context, 0)
        V, k = self.vocab_size, self.order
        j = min(context, k)
        joint = (self.stationary[:, None] * self.probs).reshape(V ** (k - j), V**j, V)
        marg = joint.sum(axis=0)  # (V**j, V): P(last j tokens, next)
        p_ctx = marg.sum(axis=1)  # (V**j,)
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = np.where(p_ctx[:, None] > 0, marg / p_ctx[:, None], 0.0)
        return float(p_ctx @ _row_entropy(cond))

    def window_entropy(self, seq_len: int) -> float:
        """Lowest achievable mean next-token loss over a window of ``seq_len`` predictions (nats).

        A GPT trained on windows ``x[0..T]`` predicts ``x[t+1]`` from ``x[0..t]``: the prediction
        at position t sees t+1 tokens of context, so positions t < order-1 are penalised. Mean over
        t = 0..T-1 of ``conditional_entropy(t + 1)``. (The first token x[0] is never predicted.)
        """
        integer("seq_len", seq_len, 1)
        terms = [self.conditional_entropy(min(t + 1, self.order)) for t in range(min(seq_len, self.order))]
        rest = max(seq_len - self.order, 0) * self.entropy_rate()
        return (sum(terms) + rest) / seq_len

    def context_index(self, tokens: np.ndarray) -> np.ndarray:
        """Row index of the context formed by the last ``order`` entries of ``tokens`` (..., k)."""
        V, k = self.vocab_size, self.order
        weights = V ** np.arange(k - 1, -1, -1)  # oldest token is the most significant digit
        return (np.asarray(tokens)[..., -k:] * weights).sum(axis=-1)

    def sample(self, n_streams: int, length: int, seed: int = 0) -> torch.Tensor:
        """Sample ``n_streams`` independent stationary sequences of ``length`` tokens.

        Returns a LongTensor of shape (n_streams, length). Each stream starts from the stationary
        law, so every position has the same statistics.
        """
        integer("n_streams", n_streams, 1)
        integer("length", length, self.order)
        integer("seed", seed, 0)
        V, k = self.vocab_size, self.order
        rng = np.random.default_rng(seed)
        out = np.empty((n_streams, length), dtype=np.int64)
        ctx = rng.choice(V**k, size=n_streams, p=self.stationary)  # (n_streams,)
        for j in range(k):  # write the starting context's digits, oldest first
            out[:, j] = (ctx // V ** (k - 1 - j)) % V
        cdf = np.cumsum(self.probs, axis=1)  # (V**k, V)
        cdf[:, -1] = 1.0
        for t in range(k, length):
            u = rng.random(n_streams)[:, None]  # (n_streams, 1)
            nxt = (u > cdf[ctx]).sum(axis=1)  # inverse-CDF sampling, (n_streams,)
            out[:, t] = nxt
            ctx = (ctx % V ** (k - 1)) * V + nxt  # shift the context window by one token
        return torch.from_numpy(out)

    def nll(self, tokens: torch.Tensor | np.ndarray) -> float:
        """Mean negative log-likelihood (nats/token) of ``tokens`` (n_streams, length) under the
        true process, over positions ``order..length-1``. Its expectation is the entropy rate."""
        x = np.asarray(tokens)
        if x.ndim != 2 or x.shape[1] <= self.order:
            raise ValueError(f"tokens must have shape (n_streams, length > order), got {x.shape}")
        k = self.order
        windows = np.lib.stride_tricks.sliding_window_view(x, k + 1, axis=1)  # (S, L-k, k+1)
        ctx = self.context_index(windows[..., :k])
        return float(-np.log(self.probs[ctx, windows[..., k]]).mean())


def make_source(cfg: MarkovConfig | None = None, **overrides: object) -> MarkovSource:
    """Draw a random order-k Markov source.

    Each row is ``Dirichlet(concentration · zipf)``, with ``zipf(v) ∝ 1/(v+1)^zipf_exponent``
    after a random permutation per row (so each context prefers different tokens).
    """
    if cfg is None:
        cfg = MarkovConfig(**overrides)  # type: ignore[arg-type]
    elif overrides:
        raise TypeError("pass either cfg or keyword overrides, not both")
    rng = np.random.default_rng(cfg.seed)
    V, k = cfg.vocab_size, cfg.order
    base = 1.0 / np.arange(1, V + 1) ** cfg.zipf_exponent
    base /= base.sum()
    n_ctx = V**k
    perms = np.argsort(rng.random((n_ctx, V)), axis=1)  # a random permutation per row
    alphas = cfg.concentration * base[perms]  # (V**k, V)
    probs = rng.gamma(alphas)  # Dirichlet via normalised Gamma draws
    probs = np.maximum(probs, 1e-300)  # keep every transition possible (ergodic chain)
    probs /= probs.sum(axis=1, keepdims=True)
    return MarkovSource(probs=probs, order=k)
