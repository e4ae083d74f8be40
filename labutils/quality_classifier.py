"""A quality classifier in the FineWeb-Edu pattern: annotate, train a small model, infer, filter.

FineWeb-Edu (Penedo et al. 2024, "The FineWeb Datasets", Sec. 4) had Llama-3-70B-Instruct score
web pages for educational value on an additive 0-5 scale, trained a small model on those
annotations, ran it over the whole corpus and kept pages scoring at least 3. Lecture 1,
*Pretraining Large Language Models* (slide *Dataset: FineWeb-Edu*) draws the same loop: annotate,
train, infer. Here every piece runs on a CPU in seconds (chapter 11, section 3.6):

* **annotate**: :func:`educational_score` is a *documented labelling rule*, an additive 0-5
  score whose five points paraphrase the five points of FineWeb-Edu's prompt with features a
  regex can check. It stands in for Llama 3 70B; it is a teacher, not a judge of quality;
* **train**: :func:`hashed_features` (word 1- and 2-grams hashed into a fixed number of
  buckets, log counts, unit length) and :func:`train_logistic_regression` (L2-regularised
  logistic regression fitted with SciPy's L-BFGS) on "score >= 3" labels;
* **infer and filter**: :func:`predict_proba`, then a threshold;
* **measure**: :func:`precision_recall` against held-out annotations, and the trade-off curve.

Documents come from :func:`load_python_docs_paragraphs` (real paragraphs of the English Python
documentation, PSF licence; provenance in ``labutils/data/README.md``) and
:func:`synthetic_spam` (web junk generated here from word lists, said so wherever it is used).
"""

from __future__ import annotations

import csv
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from labutils.validate import fraction, integer, non_negative, str_list

FINEWEB_EDU_THRESHOLD = 3  # keep pages whose (rounded) educational score is >= 3
FINEWEB_EDU_SOURCE = "Penedo et al. 2024 (FineWeb), Sec. 4 FineWeb-Edu"
FINEWEB_EDU_F1 = 0.82  # the classifier's F1 at threshold 3 on the held-out annotations
# Llama-3-70B-Instruct annotations, as the paper counts them (Sec. 4) ...
FINEWEB_EDU_PAPER_ANNOTATED, FINEWEB_EDU_PAPER_TRAIN, FINEWEB_EDU_PAPER_HELD_OUT = (
    460_000, 410_000, 50_000)
# ... and as the blog post counts them: 500k annotated (the "500K samples" of Lecture 1's
# FineWeb-Edu slide), 450,000 to train and a held-out validation set of 45k samples on which the
# checkpoint was chosen ("Training a classifier"; checked in the blog's text on 2026-12-01).
FINEWEB_EDU_BLOG_ANNOTATED, FINEWEB_EDU_BLOG_TRAIN = 500_000, 450_000
FINEWEB_EDU_BLOG_HELD_OUT = 45_000
FINEWEB_EDU_BLOG_SOURCE = ("FineWeb blog post (HuggingFaceFW/blogpost-fineweb-v1), Annotating for "
                           "educational quality at scale; Training a classifier")

PARAGRAPHS_PATH = Path(__file__).parent / "data" / "python_docs_paragraphs.tsv"

# --------------------------------------------------------------------------------------------
# Annotation: an additive 0-5 rule standing in for the LLM annotator.
# --------------------------------------------------------------------------------------------

TEACHING_CUES = ("for example", "for instance", "e.g.", "such as", "because", "means",
                 "is called", "is used to", "that is", "in other words", "note that", "this is")
READER_CUES = ("you", "your", "let's", "we ")
SPAM_CUES = ("buy", "cheap", "click", "free shipping", "discount", "subscribe", "casino",
             "sale", "offer", "!!")

RUBRIC = (  # one line per point, paraphrasing FineWeb-Edu's five additive criteria
    "1: some basic information: at least 15 words, at least 80 % of them alphabetic",
    "2: addresses something pertinent to teaching: at least one teaching cue ('for example', ...)",
    "3: coherent and usable for teaching: at least 2 sentences of 8 to 35 words on average",
    "4: written for a learner: addresses the reader ('you', \"let's\", ...), at least 40 words",
    "5: outstanding: at least 80 words and at least 2 different teaching cues",
)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def educational_score(text: str) -> int:
    """Additive 0-5 educational score of ``text`` (see :data:`RUBRIC`); a page with a spam cue
    ('buy', 'click', ...) scores at most 1, as the prompt's "advertisements" caveat implies."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lower = f" {text.lower()} "
    words = text.split()
    alpha = sum(any(c.isalpha() for c in w) for w in words) / max(1, len(words))
    cues = {c for c in TEACHING_CUES if c in lower}
    sentences = _sentences(text)
    mean_len = len(words) / max(1, len(sentences))
    points = [
        len(words) >= 15 and alpha >= 0.8,
        bool(cues),
        len(sentences) >= 2 and 8 <= mean_len <= 35,
        any(re.search(rf"\b{re.escape(c.strip())}\b", lower) for c in READER_CUES)
        and len(words) >= 40,
        len(words) >= 80 and len(cues) >= 2,
    ]
    score = sum(points)
    if any(c in lower for c in SPAM_CUES):
        score = min(score, 1)
    return int(score)


# --------------------------------------------------------------------------------------------
# Documents.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Paragraphs:
    """The shipped English Python-documentation paragraphs, as parallel lists."""

    sections: list[str]  # top-level part of the docs: tutorial, faq, howto, library, ...
    texts: list[str]
    sources: list[str]  # repository@commit:file (rst line)


def load_python_docs_paragraphs(path: Path = PARAGRAPHS_PATH) -> Paragraphs:
    """Read ``python_docs_paragraphs.tsv`` (columns section, text, source)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return Paragraphs([r["section"] for r in rows], [r["text"] for r in rows],
                      [r["source"] for r in rows])


_SPAM_WORDS = ("cheap", "best", "online", "deals", "shoes", "casino", "loans", "hotel", "cars",
               "watches", "phone", "cases", "free", "games", "download", "pdf", "top", "sale")
_NAV_WORDS = ("Home", "About", "Contact", "Login", "Sign up", "Blog", "Shop", "Cart", "FAQ",
              "Privacy Policy", "Terms", "Sitemap", "Careers", "Press")
_AD_TEMPLATES = ("Buy {a} {b} now!! Free shipping on all {b}.", "Click here for {a} {b} deals!!",
                 "Best {b} {c} - {a} prices, huge discount today!!",
                 "Subscribe to get {a} {b} offers every week.", "{a} {b} sale: up to 70% off!!")


def synthetic_spam(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic web-junk pages (keyword lists, navigation menus, ad copy), generated from
    the word lists above: a stand-in for the ads and keyword lists that fill the web."""
    n = integer("n", n, 0)
    rng = np.random.default_rng(integer("seed", seed, 0))
    pages = []
    for i in range(n):
        kind = i % 3
        if kind == 0:  # a keyword list
            words = rng.choice(_SPAM_WORDS, size=int(rng.integers(20, 60)))
            pages.append(", ".join(" ".join(words[j:j + 2]) for j in range(0, len(words), 2)))
        elif kind == 1:  # a navigation menu with a footer
            items = rng.choice(_NAV_WORDS, size=int(rng.integers(8, 20)))
            pages.append(" | ".join(items) + " © 2024 All rights reserved.")
        else:  # ad copy
            lines = [str(rng.choice(_AD_TEMPLATES)).format(
                a=rng.choice(_SPAM_WORDS), b=rng.choice(_SPAM_WORDS), c=rng.choice(_SPAM_WORDS))
                for _ in range(int(rng.integers(3, 8)))]
            pages.append(" ".join(lines))
    return pages


def split_indices(n: int, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(train, test) index arrays: a seeded random split of range(n)."""
    n = integer("n", n, 2)
    test_fraction = fraction("test_fraction", test_fraction)
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# --------------------------------------------------------------------------------------------
# Features and the classifier.
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9']+")


def hashed_features(texts: list[str], n_features: int = 2 ** 12, max_n: int = 2) -> np.ndarray:
    """(docs, n_features) float64 matrix: word 1..max_n-grams hashed (CRC-32, stable across
    runs) into ``n_features`` buckets, log(1 + count), each row scaled to unit length."""
    texts = str_list("texts", texts)
    n_features = integer("n_features", n_features, 2)
    max_n = integer("max_n", max_n, 1, 5)
    features = np.zeros((len(texts), n_features))
    for row, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        for n in range(1, max_n + 1):
            for i in range(len(words) - n + 1):
                gram = " ".join(words[i:i + n]).encode()
                features[row, zlib.crc32(gram) % n_features] += 1.0
    features = np.log1p(features)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class LogisticRegression:
    """p(label = 1 | x) = sigmoid(x · weights + bias)."""

    weights: np.ndarray = field(repr=False)  # (features,)
    bias: float
    l2: float  # the L2 penalty it was trained with (on the weights, not the bias)


def _check_xy(features: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (docs, features), got shape "
                         f"{x.shape}")
    if y.shape != (x.shape[0],) or not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be {x.shape[0]} values in {{0, 1}} (one per row of "
                         f"features), got shape {y.shape}")
    return x, y.astype(float)


def _loss_and_grad(params: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float):
    """Mean binary cross-entropy plus (l2/2)·|w|², and its gradient."""
    w, b = params[:-1], params[-1]
    z = x @ w + b  # (docs,)
    # log(1 + e^z) - y·z, computed stably
    loss = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w
    err = (1.0 / (1.0 + np.exp(-z)) - y) / len(y)  # d loss / d z
    return loss, np.append(x.T @ err + l2 * w, err.sum())


def train_logistic_regression(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3,
                              max_iter: int = 500) -> LogisticRegression:
    """Fit L2-regularised logistic regression by L-BFGS (the loss is convex: one optimum)."""
    x, y = _check_xy(features, labels)
    l2 = non_negative("l2", l2)
    max_iter = integer("max_iter", max_iter, 1)
    result = minimize(_loss_and_grad, np.zeros(x.shape[1] + 1), args=(x, y, l2), jac=True,
                      method="L-BFGS-B", options={"maxiter": max_iter})
    return LogisticRegression(result.x[:-1].copy(), float(result.x[-1]), l2)


def predict_proba(model: LogisticRegression, features: np.ndarray) -> np.ndarray:
    """p(label = 1) for each row of ``features``."""
    if not isinstance(model, LogisticRegression):
        raise TypeError(f"model must be a LogisticRegression, got {type(model).__name__}")
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[1] != model.weights.shape[0]:
        raise ValueError(f"features must have shape (docs, {model.weights.shape[0]}), got "
                         f"{x.shape}")
    return 1.0 / (1.0 + np.exp(-(x @ model.weights + model.bias)))


def precision_recall(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float,
                                                                                        float]:
    """(precision, recall) of keeping the documents with score >= threshold, against labels
    (1 = should be kept). Precision of an empty selection is 1 (nothing wrong was kept)."""
    s = np.asarray(scores, dtype=float)
    _, y = _check_xy(s[:, None], labels)
    kept = s >= threshold
    true_pos = float(np.sum(kept & (y == 1)))
    precision = true_pos / kept.sum() if kept.any() else 1.0
    recall = true_pos / y.sum() if y.any() else 1.0
    return precision, recall
