"""Pretraining objectives as (input, target) builders over token ids: CLM, MLM, span corruption.

The lecture `003_f67430602ab4012b.txt` sorts transformers by objective: autoregressive models
(GPT) learn **causal language modelling**, autoencoding models (BERT) **masked language
modelling**, sequence-to-sequence models (T5) **span corruption** ("reconstruct span"). Each
builder here takes a 1-D integer array of token ids and returns what the model reads and what it
is scored on; positions that carry no loss hold :data:`IGNORE` (PyTorch's ``ignore_index``).

* :func:`clm_example`: inputs ``x[:-1]``, targets ``x[1:]``: every position is scored.
* :func:`mlm_example`: BERT's rule (Devlin et al. 2019, Sec. 3.1): pick 15 % of the positions;
  of those, 80 % become ``[MASK]``, 10 % a random token, 10 % stay; only picked ones are scored.
* :func:`span_corruption_example`: T5's denoising objectives (Raffel et al. 2020). Each run of
  corrupted tokens becomes one sentinel in the input, and the target lists each sentinel followed
  by the tokens it hides, plus a final sentinel. Two ways to pick the corrupted tokens:

  - ``noise="iid"``: T5's **baseline** objective (Sec. 3.1.4, Fig. 2): each token is corrupted
    independently with probability 15 %, and consecutive corrupted tokens merge into one span
    (:func:`iid_noise_mask`, as T5's ``iid_noise_mask``);
  - ``noise="spans"`` (default): the **span-corruption** variant of Sec. 3.3.4, exactly 15 % of
    the tokens in spans of mean length 3, the setting T5's final models kept (Sec. 3.7;
    ``span_corruption`` in T5's code, "Final pretraining objective used in Raffel et al.")
    (:func:`random_spans_mask`).

  :func:`reconstruct_from_spans` undoes either exactly.

:func:`loss_tokens` counts the scored tokens per sequence: the reason CLM is sample-efficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labutils.validate import fraction, integer, number

IGNORE = -100  # target value of positions without a loss (torch.nn.CrossEntropyLoss default)
OBJECTIVES = ("clm", "mlm", "span", "span_iid")
NOISE_KINDS = ("iid", "spans")  # T5 Sec. 3.1.4 baseline (i.i.d.) and Sec. 3.3.4 (mean span 3)


def _rng(rng: object) -> np.random.Generator:
    """``rng`` if it is a numpy Generator; else a TypeError naming it."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _ids(tokens: object, name: str = "tokens", min_len: int = 2) -> np.ndarray:
    x = np.asarray(tokens)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must be a 1-D integer array of token ids, got {x.dtype} {x.shape}")
    if len(x) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} tokens, got {len(x)}")
    if x.min() < 0:
        raise ValueError(f"{name} ids must be >= 0, got {x.min()}")
    return x.astype(np.int64)


def clm_example(tokens: object) -> tuple[np.ndarray, np.ndarray]:
    """Causal LM: ``(inputs, targets) = (x[:-1], x[1:])``; position t predicts token t + 1."""
    x = _ids(tokens)
    return x[:-1].copy(), x[1:].copy()


@dataclass(frozen=True)
class MLMExample:
    """A BERT-style example: the corrupted inputs, targets (:data:`IGNORE` where unscored), and
    which picked positions were masked / replaced at random / kept."""

    inputs: np.ndarray
    targets: np.ndarray
    masked: np.ndarray  # bool, picked and replaced by mask_id
    randomized: np.ndarray  # bool, picked and replaced by a random token
    kept: np.ndarray  # bool, picked and left unchanged


def mlm_example(tokens: object, *, vocab_size: int, mask_id: int, rng: np.random.Generator,
                mask_prob: float = 0.15, mask_frac: float = 0.8,
                random_frac: float = 0.1) -> MLMExample:
    """Masked LM with BERT's 15 % / 80-10-10 rule (Devlin et al. 2019, Sec. 3.1).

    Each position is picked independently with probability ``mask_prob``; a picked position is
    replaced by ``mask_id`` with probability ``mask_frac``, by a uniformly random token of
    ``[0, vocab_size)`` with probability ``random_frac``, else kept. Targets are the original
    tokens at picked positions, :data:`IGNORE` elsewhere.
    """
    x = _ids(tokens, min_len=1)
    integer("vocab_size", vocab_size, 2)
    integer("mask_id", mask_id, 0)
    fraction("mask_prob", mask_prob)
    fraction("mask_frac", mask_frac)
    fraction("random_frac", random_frac)
    if mask_frac + random_frac > 1:
        raise ValueError(f"mask_frac + random_frac must be <= 1, got {mask_frac + random_frac}")
    _rng(rng)
    picked = rng.random(len(x)) < mask_prob
    u = rng.random(len(x))
    masked = picked & (u < mask_frac)
    randomized = picked & (u >= mask_frac) & (u < mask_frac + random_frac)
    kept = picked & ~masked & ~randomized
    inputs = x.copy()
    inputs[masked] = mask_id
    inputs[randomized] = rng.integers(0, vocab_size, int(randomized.sum()))
    targets = np.where(picked, x, IGNORE)
    return MLMExample(inputs, targets, masked, randomized, kept)


def random_spans_mask(length: int, *, rng: np.random.Generator, noise_density: float = 0.15,
                      mean_span_length: float = 3.0) -> np.ndarray:
    """Boolean noise mask (True = corrupted) with T5's span statistics.

    As T5's ``random_spans_noise_mask`` (the span-corruption objective, Raffel et al. 2020,
    Sec. 3.3.4): ``round(length · noise_density)`` noisy tokens (at least 1, at most
    length − 1) split into ``round(noisy / mean_span_length)`` spans (at least 1) of random
    positive lengths, interleaved with as many non-noise spans; the sequence starts with
    non-noise.
    """
    integer("length", length, 2)
    _rng(rng)
    number("noise_density", noise_density, low=0, high=1, low_open=True)
    number("mean_span_length", mean_span_length, low=1)
    n_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    n_spans = max(int(round(n_noise / mean_span_length)), 1)
    n_spans = min(n_spans, n_noise, length - n_noise)

    def split(total: int) -> np.ndarray:  # total into n_spans random positive parts
        cuts = np.sort(rng.choice(np.arange(1, total), n_spans - 1, replace=False))
        return np.diff(np.concatenate([[0], cuts, [total]]))

    noise_lens, keep_lens = split(n_noise), split(length - n_noise)
    mask = np.zeros(length, dtype=bool)
    pos = 0
    for keep, noise in zip(keep_lens, noise_lens):
        pos += keep
        mask[pos:pos + noise] = True
        pos += noise
    return mask


def iid_noise_mask(length: int, *, rng: np.random.Generator,
                   noise_density: float = 0.15) -> np.ndarray:
    """Boolean noise mask (True = corrupted): each token independently with ``noise_density``.

    T5's baseline objective (Raffel et al. 2020, Sec. 3.1.4 and Fig. 2; ``iid_noise_mask`` in
    T5's code): the number of corrupted tokens is Binomial(length, noise_density), and
    consecutive corrupted tokens later merge into one sentinel, so spans are short (mean
    1 / (1 − noise_density) tokens away from the ends).
    """
    integer("length", length, 1)
    _rng(rng)
    number("noise_density", noise_density, low=0, high=1, low_open=True)
    return rng.random(length) < noise_density


def sentinel_id(i: int, vocab_size: int) -> int:
    """T5's i-th sentinel ``<extra_id_i>``: ids count down from the top of the vocabulary."""
    vocab_size = integer("vocab_size", vocab_size, 2)
    return vocab_size - 1 - integer("i", i, 0, vocab_size - 1)


@dataclass(frozen=True)
class SpanExample:
    """A span-corruption example: encoder inputs, decoder targets, and the noise mask used."""

    inputs: np.ndarray
    targets: np.ndarray
    noise_mask: np.ndarray
    n_spans: int


def span_corruption_example(tokens: object, *, vocab_size: int, rng: np.random.Generator,
                            noise_density: float = 0.15, mean_span_length: float = 3.0,
                            noise: str = "spans") -> SpanExample:
    """T5's denoising example (Raffel et al. 2020, Fig. 2): each corrupted run → one sentinel.

    inputs  = kept tokens with sentinel i in place of span i;
    targets = sentinel 0, span 0, sentinel 1, span 1, …, and a final sentinel.
    ``noise="spans"``: :func:`random_spans_mask` (Sec. 3.3.4, mean span ``mean_span_length``);
    ``noise="iid"``: :func:`iid_noise_mask` (the Sec. 3.1.4 baseline; ``mean_span_length`` is
    then unused). Token ids must stay below the sentinels (``< vocab_size − n_spans − 1``).
    """
    x = _ids(tokens)
    integer("vocab_size", vocab_size, 2)
    if noise == "spans":
        mask = random_spans_mask(len(x), rng=rng, noise_density=noise_density,
                                 mean_span_length=mean_span_length)
    elif noise == "iid":
        mask = iid_noise_mask(len(x), rng=rng, noise_density=noise_density)
    else:
        raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
    starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
    n_spans = len(starts)
    if x.max() >= sentinel_id(n_spans, vocab_size):
        raise ValueError(f"tokens ids must be < {sentinel_id(n_spans, vocab_size)} "
                         f"(vocab_size − n_spans − 1, below the sentinels), got {x.max()}")
    inputs, targets, span = [], [], -1
    for t, (tok, noisy) in enumerate(zip(x, mask)):
        if noisy and (t == 0 or not mask[t - 1]):
            span += 1
            inputs.append(sentinel_id(span, vocab_size))
            targets.append(sentinel_id(span, vocab_size))
        (targets if noisy else inputs).append(int(tok))
    targets.append(sentinel_id(n_spans, vocab_size))
    return SpanExample(np.array(inputs), np.array(targets), mask, n_spans)


def reconstruct_from_spans(inputs: object, targets: object, *, vocab_size: int,
                           n_spans: int) -> np.ndarray:
    """Undo :func:`span_corruption_example`: put each span back in place of its sentinel."""
    inp, tgt = _ids(inputs, "inputs", 1), _ids(targets, "targets", 1)
    integer("n_spans", n_spans, 0)
    sentinels = {sentinel_id(i, vocab_size): i for i in range(n_spans + 1)}
    spans: dict[int, list[int]] = {}
    current = None
    for tok in tgt:
        if int(tok) in sentinels:
            current = sentinels[int(tok)]
            spans[current] = []
        elif current is None:
            raise ValueError("targets must start with a sentinel")
        else:
            spans[current].append(int(tok))
    out: list[int] = []
    for tok in inp:
        out.extend(spans[sentinels[int(tok)]] if int(tok) in sentinels else [int(tok)])
    return np.array(out, dtype=np.int64)


def loss_tokens(objective: str, seq_len: int, *, mask_prob: float = 0.15,
                noise_density: float = 0.15, mean_span_length: float = 3.0) -> float:
    """Expected number of loss-bearing (scored) target tokens for one sequence of ``seq_len``.

    * ``"clm"``: ``seq_len − 1`` (every next token; a window of seq_len + 1 scores seq_len);
    * ``"mlm"``: ``mask_prob · seq_len`` (only the picked positions);
    * ``"span"`` (T5 Sec. 3.3.4): noisy tokens + one sentinel per span + the final sentinel, with
      T5's rounding: ``n = round(seq_len · noise_density)``, ``spans = round(n /
      mean_span_length)``, ``n + spans + 1``;
    * ``"span_iid"`` (T5's Sec. 3.1.4 baseline): the expectation of the same count when each token
      is corrupted independently with probability p = ``noise_density``: p·T noisy tokens, and a
      run starts at position 0 with probability p and at each later position with p(1 − p), so
      ``p·T + p + (T − 1)·p·(1 − p) + 1``.

    Every argument is checked, including those the chosen objective does not use.
    """
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    T = integer("seq_len", seq_len, 2)
    p_mlm = fraction("mask_prob", mask_prob)
    p = number("noise_density", noise_density, low=0, high=1, low_open=True)
    mean_span = number("mean_span_length", mean_span_length, low=1)
    if objective == "clm":
        return float(T - 1)
    if objective == "mlm":
        return p_mlm * T
    if objective == "span_iid":
        return p * T + p + (T - 1) * p * (1 - p) + 1
    n = min(max(int(round(T * p)), 1), T - 1)
    spans = min(max(int(round(n / mean_span)), 1), n, T - n)
    return float(n + spans + 1)
