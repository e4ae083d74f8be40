"""A word n-gram language model with interpolated Kneser-Ney smoothing, for perplexity filtering.

CCNet (Wenzek et al. 2020, "CCNet: Extracting High Quality Monolingual Datasets from Web Crawl
Data", arXiv:1911.00359) scores every web document with a 5-gram KenLM model trained on
Wikipedia and keeps the documents whose perplexity is low, i.e. that read like the reference
corpus; its code (``cc_net/perplexity.py``, ``PerplexityBucket``) cuts the perplexity
distribution at the 30th and 60th percentiles into "head", "middle" and "tail". Lecture 1,
*Pretraining Large Language Models* (slide *Dataset: quality filtering - ML*) points to KenLM for
this. KenLM itself is a C++ library with no offline wheel here, so this module writes the same
kind of model in plain Python (chapter 11, section 3.7):

* :func:`tokenize`: lower-cased words and punctuation, digits mapped to 0 (as cc_net normalises);
* :class:`KneserNeyLM` / :func:`train_kneser_ney`: interpolated Kneser-Ney (Kneser & Ney 1995;
  the interpolated form with one absolute discount ``d`` per order, as in Chen & Goodman 1999).
  The highest order uses counts, every lower order uses *continuation* counts (in how many
  distinct contexts a word follows), and the unigram level is interpolated with a uniform
  distribution over the vocabulary so unseen words (``<unk>``) get probability;
* :func:`perplexity`: ``exp(-mean log p)`` over the predicted tokens (each word plus ``</s>``),
  the per-document score CCNet thresholds (cc_net uses base 10 and the same exponent; the value
  is the same).

For every context the probabilities over the vocabulary sum to one (``tests/test_ngram_lm.py``
checks it, and a bigram example worked by hand).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from labutils.validate import integer, number, str_list

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# cc_net's PerplexityBucket defaults (cc_net/perplexity.py): head below the 30th percentile of
# perplexity, tail from the 60th up, middle in between.
CCNET_HEAD_PERCENTILE, CCNET_TAIL_PERCENTILE = 30, 60
CCNET_SOURCE = "facebookresearch/cc_net, cc_net/perplexity.py, PerplexityBucket defaults"

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens of ``text``, every digit replaced by 0."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _TOKEN.findall(re.sub(r"\d", "0", text.lower()))


@dataclass(frozen=True)
class KneserNeyLM:
    """An interpolated Kneser-Ney n-gram model (build it with :func:`train_kneser_ney`).

    ``counts[k]`` maps a context tuple of length k-1 to a Counter of next words: raw counts for
    k = order, continuation counts (number of distinct preceding words) for k < order.
    """

    order: int  # n of the n-gram, >= 1
    discount: float  # absolute discount d in (0, 1), the same for every order
    vocab: frozenset[str]  # words that can be predicted, with </s> and <unk>
    counts: dict[int, dict[tuple[str, ...], Counter]] = field(repr=False)

    def __post_init__(self):
        integer("order", self.order, 1)
        number("discount", self.discount, low=0.0, high=1.0, low_open=True)
        if self.discount >= 1.0:
            raise ValueError(f"discount must be a finite number > 0 and < 1, got {self.discount}")

    def prob(self, word: str, context: tuple[str, ...] = ()) -> float:
        """P(word | context) under interpolated Kneser-Ney; only the last order-1 words of
        ``context`` matter, and a word outside the vocabulary is scored as ``<unk>``."""
        if not isinstance(context, tuple):
            raise TypeError(f"context must be a tuple of str, got {type(context).__name__}")
        word = word if word in self.vocab else UNK
        n = self.order - 1
        history = ((BOS,) * n + context)[len(context):] if n else ()  # last n words, <s>-padded
        return self._prob(word, history, self.order)

    def _prob(self, word: str, history: tuple[str, ...], k: int) -> float:
        if k == 0:
            return 1.0 / len(self.vocab)  # uniform floor under the unigram level
        lower = self._prob(word, history[1:], k - 1) if k > 1 else self._prob(word, (), 0)
        table = self.counts[k].get(history)
        if not table:
            return lower  # unseen context: all mass goes to the lower order
        total = sum(table.values())
        # P_k(w|h) = max(c(h,w) - d, 0)/c(h) + d·N1+(h•)/c(h) · P_{k-1}(w|h')
        return max(table.get(word, 0) - self.discount, 0.0) / total + (
            self.discount * len(table) / total * lower)

    def sentence_log_prob(self, tokens: list[str]) -> float:
        """Natural-log probability of ``tokens`` followed by ``</s>``, with (order-1) ``<s>`` as
        the start context."""
        padded = [BOS] * (self.order - 1) + list(tokens) + [EOS]
        return sum(math.log(self.prob(padded[i], tuple(padded[i - self.order + 1:i])))
                   for i in range(self.order - 1, len(padded)))


def train_kneser_ney(texts: list[str], order: int = 3, discount: float = 0.75) -> KneserNeyLM:
    """Fit an interpolated Kneser-Ney model of ``order`` on ``texts`` (each text one sequence,
    tokenised by :func:`tokenize`). ``discount`` 0.75 is the usual single-discount choice."""
    texts = str_list("texts", texts)
    order = integer("order", order, 1, 6)
    if not texts:
        raise ValueError("texts must hold at least one document")
    seqs = [[BOS] * (order - 1) + tokenize(t) + [EOS] for t in texts]
    vocab = frozenset({w for s in seqs for w in s if w != BOS} | {EOS, UNK})
    # Distinct n-grams of every length up to `order` whose last word is predicted (not <s>).
    grams: dict[int, Counter] = {k: Counter() for k in range(1, order + 1)}
    for s in seqs:
        for i in range(order - 1, len(s)):
            for k in range(1, order + 1):
                grams[k][tuple(s[i - k + 1:i + 1])] += 1
    counts: dict[int, dict[tuple[str, ...], Counter]] = {k: defaultdict(Counter)
                                                        for k in range(1, order + 1)}
    for gram, c in grams[order].items():  # highest order: raw counts
        counts[order][gram[:-1]][gram[-1]] += c
    for k in range(1, order):  # lower orders: continuation counts N1+(• g)
        for gram in grams[k + 1]:
            g = gram[1:]
            counts[k][g[:-1]][g[-1]] += 1
    return KneserNeyLM(order, discount, vocab, {k: dict(v) for k, v in counts.items()})


def perplexity(lm: KneserNeyLM, text: str) -> float:
    """Perplexity of one document: exp(-(sum of ln p) / (number of words + 1 for </s>))."""
    if not isinstance(lm, KneserNeyLM):
        raise TypeError(f"lm must be a KneserNeyLM, got {type(lm).__name__}")
    tokens = tokenize(text)
    return math.exp(-lm.sentence_log_prob(tokens) / (len(tokens) + 1))


def perplexity_buckets(perplexities: list[float], head_percentile: float = CCNET_HEAD_PERCENTILE,
                       tail_percentile: float = CCNET_TAIL_PERCENTILE) -> list[str]:
    """"head", "middle" or "tail" for each perplexity, cut at the given percentiles of the same
    list (CCNet's rule: below the head cutoff is head, from the tail cutoff up is tail)."""
    lo = number("head_percentile", head_percentile, low=0.0, high=100.0)
    hi = number("tail_percentile", tail_percentile, low=lo, high=100.0)
    values = np.asarray(perplexities, dtype=float)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("perplexities must be a non-empty 1-D list of finite numbers")
    cut_head, cut_tail = np.percentile(values, [lo, hi])
    return ["head" if p < cut_head else "middle" if p < cut_tail else "tail" for p in values]
