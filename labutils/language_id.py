"""Language identification with an offline model, and FineWeb's language-score threshold.

FineWeb keeps a document only if a fastText language classifier gives English a score of at
least 0.65 (Penedo et al. 2024, "The FineWeb Datasets", Sec. 3.3 *Base filtering*; the same
``LanguageFilter`` stage sits third in datatrove's ``examples/fineweb.py``, after the URL filter
and trafilatura). fastText's ``lid.176`` model is a separate download, so this module uses the
model that ships inside the ``langid`` wheel (langid.py, Lui & Baldwin 2012: a naive Bayes
classifier over byte n-grams, 97 languages) with normalised probabilities, so a score is a
posterior probability in [0, 1] like fastText's. The two models are different, so the same 0.65
does not keep exactly the same documents; the rule is the same (chapter 11, section 3.5).

* :func:`identify`: ``(language, score)`` for each text;
* :func:`language_filter`: FineWeb's keep/drop decision for a target language and threshold;
* :func:`load_multilingual_sample`: the shipped sample of real paragraphs in seven languages
  (the Python tutorial and its CC0 translations; provenance in ``labutils/data/README.md``).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labutils.validate import fraction, str_list

FINEWEB_LANGUAGE_THRESHOLD = 0.65  # keep English with score >= 0.65
FINEWEB_LANGUAGE_SOURCE = "Penedo et al. 2024 (FineWeb), Sec. 3.3 Base filtering"

SAMPLE_PATH = Path(__file__).parent / "data" / "multilingual_sample.tsv"


@functools.cache
def _identifier():
    """langid.py's shipped model with normalised probabilities (loaded once, about 1 s)."""
    from langid.langid import LanguageIdentifier, model

    return LanguageIdentifier.from_modelstring(model, norm_probs=True)


def model_languages() -> list[str]:
    """The ISO 639-1 codes of the languages langid.py's shipped model knows."""
    return [str(code) for code in _identifier().nb_classes]


def identify(texts: list[str]) -> list[tuple[str, float]]:
    """``(ISO 639-1 code, probability of that language)`` for each text, from langid.py's model.

    Computed for all texts at once: the byte n-gram counts of each text (langid's own
    ``instance2fv``) times the model's log-probability table, then a softmax over the 97
    languages. This is what ``LanguageIdentifier.classify`` with ``norm_probs=True`` returns,
    one matrix product instead of one slow mixed-type dot product per text.
    """
    texts = str_list("texts", texts)
    if not texts:
        return []
    ident = _identifier()
    counts = np.stack([ident.instance2fv(t) for t in texts]).astype(np.float64)  # (docs, feats)
    log_p = counts @ ident.nb_ptc.astype(np.float64) + ident.nb_pc  # (docs, languages)
    log_p -= log_p.max(axis=1, keepdims=True)
    probs = np.exp(log_p) / np.exp(log_p).sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    return [(str(ident.nb_classes[b]), float(probs[i, b])) for i, b in enumerate(best)]


@dataclass(frozen=True)
class LanguageDecision:
    """One document's language-filter outcome."""

    language: str  # the classifier's top language
    score: float  # its probability, in [0, 1]
    kept: bool  # language == target and score >= threshold


def language_filter(texts: list[str], target: str = "en",
                    threshold: float = FINEWEB_LANGUAGE_THRESHOLD) -> list[LanguageDecision]:
    """FineWeb's rule: keep a text if its top language is ``target`` with score >= ``threshold``."""
    if not isinstance(target, str) or not target:
        raise TypeError(f"target must be a language code such as 'en', got {target!r}")
    threshold = fraction("threshold", threshold)
    return [LanguageDecision(lang, float(score), lang == target and score >= threshold)
            for lang, score in identify(texts)]


@dataclass(frozen=True)
class Sample:
    """The shipped multilingual sample: parallel lists, one entry per paragraph."""

    languages: list[str]  # the language each paragraph is written in (the ground truth)
    texts: list[str]
    sources: list[str]  # repository@commit:file (line) it was taken from


def load_multilingual_sample(path: Path = SAMPLE_PATH) -> Sample:
    """Read ``multilingual_sample.tsv`` (columns lang, text, source)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return Sample([r["lang"] for r in rows], [r["text"] for r in rows], [r["source"] for r in rows])


def snippet(text: str, n_chars: int) -> str:
    """The first ``n_chars`` characters of ``text`` (short snippets are where language
    identification gets unsure; characters, not words, so Chinese is cut the same way)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 1:
        raise ValueError(f"n_chars must be an int >= 1, got {n_chars!r}")
    return text[:n_chars]
