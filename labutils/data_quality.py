"""Cleaning a web corpus: Gopher-style quality heuristics, exact and MinHash deduplication.

The lecture (`001_1699c98f94d8aa9d.txt`, *Dataset: quality heuristics*, *Dataset: deduplication*)
walks through FineWeb's pipeline: language filter, quality heuristics, deduplication. This
module writes the pieces in plain Python and numpy:

* **heuristics** (Rae et al. 2021, Gopher, App. A and its Table A1): small functions, one per
  rule, each returning ``None`` (pass) or a short reason; :func:`gopher_reasons` runs them all;
* **exact dedup**: SHA-1 of whitespace-and-case-normalised text (:func:`exact_dedup`);
* **fuzzy dedup**: word n-gram shingles, MinHash signatures (Broder 1997), banded LSH
  (b bands of r rows: two documents become candidates if any band matches, probability
  ``1 − (1 − s^r)^b`` for Jaccard similarity s), and clusters of candidates keep one document
  (:func:`minhash_dedup`). FineWeb (Penedo et al. 2024) uses 5-grams and 112 hashes in 14 bands
  of 8 (:data:`FINEWEB_BANDS`, :data:`FINEWEB_ROWS`).

:func:`synthetic_corpus` makes a small corpus with planted exact duplicates, near duplicates and
junk, so every number in chapter 11 is computed offline.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from labutils.validate import fraction, integer, number, numpy_generator, str_list

# ---------------------------------------------------------------------------------------------
# Gopher quality heuristics (Rae et al. 2021, App. A; repetition thresholds from Table A1).
# ---------------------------------------------------------------------------------------------

GOPHER_MIN_WORDS, GOPHER_MAX_WORDS = 50, 100_000
GOPHER_MEAN_WORD_LEN = (3.0, 10.0)  # characters
GOPHER_MAX_SYMBOL_RATIO = 0.1  # "#" or "..." per word
GOPHER_MAX_BULLET_LINES = 0.9
GOPHER_MAX_ELLIPSIS_LINES = 0.3
GOPHER_MIN_ALPHA_WORDS = 0.8
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
GOPHER_MIN_STOP_WORDS = 2
GOPHER_MAX_DUP_LINE_FRAC = 0.30
GOPHER_TOP_NGRAM_CHAR_FRAC = {2: 0.20, 3: 0.18, 4: 0.16}

_BULLETS = ("•", "-", "*", "‣", "◦")
_ELLIPSES = ("...", "…")


def words_of(text: str) -> list[str]:
    """Whitespace-separated words (the simple tokenisation these rules assume)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text.split()


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def word_count_rule(text: str) -> str | None:
    """Keep documents with 50 to 100,000 words."""
    n = len(words_of(text))
    if not GOPHER_MIN_WORDS <= n <= GOPHER_MAX_WORDS:
        return f"word count {n} outside [{GOPHER_MIN_WORDS}, {GOPHER_MAX_WORDS}]"
    return None


def mean_word_length_rule(text: str) -> str | None:
    """Keep documents whose mean word length is 3 to 10 characters."""
    w = words_of(text)
    mean = sum(map(len, w)) / len(w) if w else 0.0
    lo, hi = GOPHER_MEAN_WORD_LEN
    return None if lo <= mean <= hi else f"mean word length {mean:.1f} outside [{lo:g}, {hi:g}]"


def symbol_ratio_rule(text: str) -> str | None:
    """Drop documents with more than 0.1 hash symbols, or ellipses, per word."""
    n = max(1, len(words_of(text)))
    for name, count in (("#", text.count("#")), ("ellipsis", sum(text.count(e) for e in _ELLIPSES))):
        if count / n > GOPHER_MAX_SYMBOL_RATIO:
            return f"{name}-to-word ratio {count / n:.2f} > {GOPHER_MAX_SYMBOL_RATIO}"
    return None


def bullet_lines_rule(text: str) -> str | None:
    """Drop documents with more than 90 % of lines starting with a bullet point."""
    lines = _lines(text)
    frac = sum(ln.startswith(_BULLETS) for ln in lines) / max(1, len(lines))
    return f"bullet lines {frac:.0%} > 90%" if frac > GOPHER_MAX_BULLET_LINES else None


def ellipsis_lines_rule(text: str) -> str | None:
    """Drop documents with more than 30 % of lines ending with an ellipsis."""
    lines = _lines(text)
    frac = sum(ln.endswith(_ELLIPSES) for ln in lines) / max(1, len(lines))
    return f"ellipsis lines {frac:.0%} > 30%" if frac > GOPHER_MAX_ELLIPSIS_LINES else None


def alpha_words_rule(text: str) -> str | None:
    """Keep documents where at least 80 % of words contain an alphabetic character."""
    w = words_of(text)
    frac = sum(any(c.isalpha() for c in x) for x in w) / max(1, len(w))
    return None if frac >= GOPHER_MIN_ALPHA_WORDS else f"alphabetic words {frac:.0%} < 80%"


def stop_words_rule(text: str) -> str | None:
    """Keep documents containing at least two of the eight English stop words."""
    present = set(x.lower().strip(".,;:!?\"'") for x in words_of(text)) & set(GOPHER_STOP_WORDS)
    n = len(present)
    return None if n >= GOPHER_MIN_STOP_WORDS else f"{n} distinct stop words < 2"


def duplicate_line_fraction(text: str) -> float:
    """Fraction of (non-empty) lines that repeat an earlier line of the same document."""
    lines = _lines(text)
    return (len(lines) - len(set(lines))) / max(1, len(lines))


def duplicate_lines_rule(text: str) -> str | None:
    """Drop documents with more than 30 % duplicate lines (Table A1)."""
    f = duplicate_line_fraction(text)
    return f"duplicate lines {f:.0%} > 30%" if f > GOPHER_MAX_DUP_LINE_FRAC else None


def top_ngram_char_fraction(text: str, n: int) -> float:
    """Characters covered by the most common word n-gram (all its occurrences), over all word
    characters (Gopher's "top n-gram character fraction")."""
    integer("n", n, 1)
    w = words_of(text)
    total = sum(map(len, w))
    if len(w) < n or total == 0:
        return 0.0
    gram, count = Counter(tuple(w[i:i + n]) for i in range(len(w) - n + 1)).most_common(1)[0]
    return count * sum(map(len, gram)) / total


def top_ngram_rule(text: str) -> str | None:
    """Drop documents whose top 2-, 3- or 4-gram covers > 20 %, 18 %, 16 % of characters."""
    for n, limit in GOPHER_TOP_NGRAM_CHAR_FRAC.items():
        f = top_ngram_char_fraction(text, n)
        if f > limit:
            return f"top {n}-gram covers {f:.0%} of characters > {limit:.0%}"
    return None


GOPHER_RULES = (word_count_rule, mean_word_length_rule, symbol_ratio_rule, bullet_lines_rule,
                ellipsis_lines_rule, alpha_words_rule, stop_words_rule, duplicate_lines_rule,
                top_ngram_rule)


def gopher_reasons(text: str) -> list[str]:
    """Reasons the Gopher rules give to drop ``text`` (empty list: keep it)."""
    return [r for rule in GOPHER_RULES if (r := rule(text)) is not None]


# ---------------------------------------------------------------------------------------------
# Exact deduplication.
# ---------------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Lower-case, punctuation dropped, whitespace collapsed: what exact dedup compares."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def exact_hash(text: str) -> str:
    """SHA-1 hex digest of :func:`normalize` (``text``)."""
    return hashlib.sha1(normalize(text).encode()).hexdigest()


def exact_dedup(docs: list[str]) -> list[int]:
    """Indices of the documents kept: the first of each group with the same :func:`exact_hash`."""
    seen: set[str] = set()
    kept = []
    for i, d in enumerate(str_list("docs", docs)):
        h = exact_hash(d)
        if h not in seen:
            seen.add(h)
            kept.append(i)
    return kept


# ---------------------------------------------------------------------------------------------
# MinHash + LSH (Broder 1997; banding as in Leskovec, Rajaraman & Ullman, Mining of Massive
# Datasets, Ch. 3.4).
# ---------------------------------------------------------------------------------------------

FINEWEB_NGRAM, FINEWEB_BANDS, FINEWEB_ROWS = 5, 14, 8  # Penedo et al. 2024: 112 hashes
_PRIME = (1 << 31) - 1  # Mersenne prime: (a·x + b) mod p stays below 2**63 in uint64


def shingles(text: str, n: int = FINEWEB_NGRAM) -> set[str]:
    """The set of word n-grams of :func:`normalize` (``text``) (the whole text if shorter)."""
    integer("n", n, 1)
    w = normalize(text).split()
    if len(w) <= n:
        return {" ".join(w)}
    return {" ".join(w[i:i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    for name, v in (("a", a), ("b", b)):
        if not isinstance(v, (set, frozenset)):
            raise TypeError(f"{name} must be a set, got {type(v).__name__}")
    return len(a & b) / len(a | b) if a or b else 1.0


def hash_shingles(items: set[str]) -> np.ndarray:
    """64-bit BLAKE2b of each shingle, reduced mod 2**31 − 1 (uint64 array)."""
    return np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
                     % _PRIME for s in sorted(items)], dtype=np.uint64)


@dataclass(frozen=True, eq=False)
class MinHasher:
    """``num_perm`` random hash functions h_i(x) = (a_i·x + b_i) mod (2**31 − 1).

    A signature holds, for each h_i, the minimum over a document's shingles; two signatures agree
    in slot i with probability equal to the Jaccard similarity of the shingle sets (Broder 1997).
    """

    num_perm: int = FINEWEB_BANDS * FINEWEB_ROWS
    seed: int = 0

    def __post_init__(self) -> None:
        integer("num_perm", self.num_perm, 1)
        integer("seed", self.seed, 0)
        rng = np.random.default_rng(self.seed)
        object.__setattr__(self, "a", rng.integers(1, _PRIME, self.num_perm, dtype=np.uint64))
        object.__setattr__(self, "b", rng.integers(0, _PRIME, self.num_perm, dtype=np.uint64))

    def signature_of_hashes(self, hashes: np.ndarray) -> np.ndarray:
        """Signature (num_perm,) of a set given as integer hashes in [0, 2**31 − 1)."""
        x = np.asarray(hashes, dtype=np.uint64) % np.uint64(_PRIME)
        if x.size == 0:
            raise ValueError("hashes must hold at least one element")
        return ((self.a[:, None] * x[None, :] + self.b[:, None]) % np.uint64(_PRIME)).min(axis=1)

    def signature(self, text: str, n: int = FINEWEB_NGRAM) -> np.ndarray:
        """Signature of ``text``'s word n-gram shingles."""
        return self.signature_of_hashes(hash_shingles(shingles(text, n)))


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of signature slots that agree: an unbiased estimate of the Jaccard similarity,
    with standard error sqrt(J(1 − J)/k) for k slots."""
    if np.shape(sig_a) != np.shape(sig_b):
        raise ValueError(f"signatures must have the same shape, got {np.shape(sig_a)} and {np.shape(sig_b)}")
    return float(np.mean(np.asarray(sig_a) == np.asarray(sig_b)))


def lsh_candidate_probability(s: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """P(two documents of Jaccard similarity ``s`` share at least one of ``bands`` bands of
    ``rows`` signature slots) = 1 − (1 − s^rows)^bands."""
    integer("bands", bands, 1)
    integer("rows", rows, 1)
    if isinstance(s, (bool, np.bool_)) or not (isinstance(s, (int, float, np.ndarray, np.number))
                                               and np.issubdtype(np.asarray(s).dtype, np.number)):
        raise TypeError(f"s must be a similarity in [0, 1] (a number or numeric array), got {s!r}")
    s_arr = np.asarray(s, dtype=float)
    if np.any((s_arr < 0) | (s_arr > 1)) or not np.all(np.isfinite(s_arr)):
        raise ValueError(f"s must be a similarity in [0, 1], got {s!r}")
    p = 1.0 - (1.0 - s_arr**rows) ** bands
    return float(p) if np.ndim(s) == 0 else p


def lsh_threshold(bands: int, rows: int) -> float:
    """The similarity (1/b)^(1/r) near which the S-curve rises most steeply."""
    integer("bands", bands, 1)
    integer("rows", rows, 1)
    return (1.0 / bands) ** (1.0 / rows)


def lsh_candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs (i < j) of rows of ``signatures`` (n_docs, bands·rows) that agree on a whole band."""
    sig = np.asarray(signatures)
    integer("bands", bands, 1)
    integer("rows", rows, 1)
    if sig.ndim != 2 or sig.shape[1] != bands * rows:
        raise ValueError(f"signatures must have shape (n_docs, bands·rows = {bands * rows}), "
                         f"got {sig.shape}")
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        for i, row in enumerate(sig[:, band * rows:(band + 1) * rows]):
            buckets.setdefault(row.tobytes(), []).append(i)
        for members in buckets.values():
            pairs.update((members[x], members[y]) for x in range(len(members))
                         for y in range(x + 1, len(members)))
    return pairs


def random_set_pair(s: float, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of ``size`` random 31-bit hashes sharing ``round(2·size·s/(1+s))`` elements, so
    their Jaccard similarity is as close to ``s`` as the integer sizes allow."""
    fraction("s", s)
    integer("size", size, 1)
    numpy_generator("rng", rng)
    shared = round(2 * size * s / (1 + s))
    pool = rng.choice(_PRIME, 2 * size - shared, replace=False).astype(np.uint64)
    return pool[:size], pool[size - shared:]


def observed_candidate_rate(s: float, bands: int, rows: int, *, n_pairs: int = 200,
                            size: int = 200, seed: int = 0) -> tuple[float, float]:
    """Measure LSH: the fraction of ``n_pairs`` random set pairs of similarity ≈ ``s`` (see
    :func:`random_set_pair`) that :func:`lsh_candidate_pairs` flags. Returns (the pairs' exact
    Jaccard similarity, the observed rate)."""
    integer("n_pairs", n_pairs, 1)
    integer("seed", seed, 0)
    rng = np.random.default_rng(seed)
    hasher = MinHasher(bands * rows, seed)
    hits, j = 0, 0.0
    for _ in range(n_pairs):
        a, b = random_set_pair(s, size, rng)
        j = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
        sigs = np.stack([hasher.signature_of_hashes(a), hasher.signature_of_hashes(b)])
        hits += bool(lsh_candidate_pairs(sigs, bands, rows))
    return j, hits / n_pairs


def _clusters(n: int, pairs: set[tuple[int, int]]) -> list[int]:
    """Union-find: the smallest index of each element's connected component."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(n)]


def minhash_dedup(docs: list[str], *, bands: int = FINEWEB_BANDS, rows: int = FINEWEB_ROWS,
                  n: int = FINEWEB_NGRAM, seed: int = 0) -> list[int]:
    """Indices kept by MinHash-LSH dedup: candidate pairs are linked into clusters and each
    cluster keeps its first document (FineWeb's recipe, with our own hashing)."""
    docs = str_list("docs", docs)
    integer("bands", bands, 1)
    integer("rows", rows, 1)
    hasher = MinHasher(bands * rows, seed)
    sigs = np.stack([hasher.signature(d, n) for d in docs]) if docs else np.zeros((0, bands * rows))
    roots = _clusters(len(docs), lsh_candidate_pairs(sigs, bands, rows))
    return [i for i, r in enumerate(roots) if r == i]


# ---------------------------------------------------------------------------------------------
# A synthetic corpus with planted duplicates and junk.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticCorpus:
    """Documents and what each one is: ``"original"``, ``"exact_dup"`` (same text up to case and
    whitespace), ``"near_dup"`` (a few words edited) or ``"junk:<kind>"``; ``source[i]`` is the
    original a duplicate was copied from (its own index otherwise)."""

    docs: list[str]
    kinds: list[str]
    source: list[int]


def _pseudo_words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(n)]


def _prose(rng: np.random.Generator, vocab: list[str], n_words: int) -> str:
    """Sentences of Zipf-distributed pseudo-words mixed with English stop words."""
    probs = 1.0 / np.arange(1, len(vocab) + 1)
    probs /= probs.sum()
    out, line = [], []
    for _ in range(n_words):
        word = (GOPHER_STOP_WORDS[rng.integers(len(GOPHER_STOP_WORDS))] if rng.random() < 0.25
                else vocab[rng.choice(len(vocab), p=probs)])
        line.append(word)
        if len(line) >= 12 and rng.random() < 0.2:
            out.append(" ".join(line) + ".")
            line = []
    out.append(" ".join(line) + ".")
    return "\n".join(out)


def _edit(rng: np.random.Generator, text: str, vocab: list[str], frac: float) -> str:
    """Replace ``frac`` of the words (at least one) by random vocabulary words."""
    lines = [ln.split() for ln in text.split("\n")]
    flat = [(i, j) for i, ln in enumerate(lines) for j in range(len(ln))]
    for k in rng.choice(len(flat), max(1, round(frac * len(flat))), replace=False):
        i, j = flat[k]
        lines[i][j] = vocab[rng.integers(len(vocab))]
    return "\n".join(" ".join(ln) for ln in lines)


JUNK_KINDS = ("too_short", "hashtags", "ellipsis_lines", "numbers", "repeated_lines")


def _junk(rng: np.random.Generator, vocab: list[str], kind: str) -> str:
    if kind == "too_short":
        return _prose(rng, vocab, 20)
    if kind == "hashtags":
        return " ".join(f"#{vocab[rng.integers(len(vocab))]} the" for _ in range(60))
    if kind == "ellipsis_lines":
        return "\n".join(_prose(rng, vocab, 12).rstrip(".") + "..." for _ in range(12))
    if kind == "numbers":
        return " ".join(str(rng.integers(0, 10**6)) for _ in range(120)) + " the and of"
    if kind == "repeated_lines":
        line = _prose(rng, vocab, 14).replace("\n", " ")
        return "\n".join([line] * 8 + [_prose(rng, vocab, 14).replace("\n", " ")])
    raise ValueError(f"kind must be one of {JUNK_KINDS}, got {kind!r}")


def synthetic_corpus(n_originals: int = 200, *, exact_dup_frac: float = 0.1,
                     near_dup_frac: float = 0.1, junk_frac: float = 0.1,
                     edit_frac: float = 0.01, words_per_doc: int = 200,
                     seed: int = 0) -> SyntheticCorpus:
    """``n_originals`` prose documents plus planted copies and junk, shuffled.

    Adds ``round(exact_dup_frac·n)`` exact copies (re-cased, re-spaced), ``round(near_dup_frac·n)``
    near copies with ``edit_frac`` of their words replaced (1 % of 200 words leaves a 5-gram
    Jaccard of about 0.9), and ``round(junk_frac·n)`` junk documents cycling through
    :data:`JUNK_KINDS`.
    """
    integer("n_originals", n_originals, 1)
    for name, v in (("exact_dup_frac", exact_dup_frac), ("near_dup_frac", near_dup_frac),
                    ("junk_frac", junk_frac)):
        number(name, v, low=0, high=10)
    fraction("edit_frac", edit_frac)
    integer("words_per_doc", words_per_doc, GOPHER_MIN_WORDS)
    integer("seed", seed, 0)
    rng = np.random.default_rng(seed)
    vocab = _pseudo_words(rng, 2000)
    docs = [_prose(rng, vocab, words_per_doc) for _ in range(n_originals)]
    kinds, source = ["original"] * n_originals, list(range(n_originals))
    for _ in range(round(exact_dup_frac * n_originals)):
        i = int(rng.integers(n_originals))
        docs.append("  ".join(docs[i].upper().split(" ")))  # same text after normalize()
        kinds.append("exact_dup")
        source.append(i)
    for _ in range(round(near_dup_frac * n_originals)):
        i = int(rng.integers(n_originals))
        docs.append(_edit(rng, docs[i], vocab, edit_frac))
        kinds.append("near_dup")
        source.append(i)
    for k in range(round(junk_frac * n_originals)):
        kind = JUNK_KINDS[k % len(JUNK_KINDS)]
        docs.append(_junk(rng, vocab, kind))
        kinds.append(f"junk:{kind}")
        source.append(len(docs) - 1)
    order = rng.permutation(len(docs))
    new_index = {int(old): new for new, old in enumerate(order)}
    return SyntheticCorpus([docs[i] for i in order], [kinds[i] for i in order],
                           [new_index[source[i]] for i in order])
