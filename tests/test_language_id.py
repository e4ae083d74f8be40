"""Tests for labutils.language_id: langid.py offline, FineWeb's 0.65 rule, the shipped sample."""

from __future__ import annotations

from collections import Counter

import pytest

from labutils import language_id


def test_batched_identify_matches_langid_classify():
    ident = language_id._identifier()
    texts = ["The cat sat on the mat.", "Le chat est assis sur le tapis.", "ok", "12345",
             "Der Hund schläft im Garten, weil es regnet.", "猫坐在垫子上。"]
    ours = language_id.identify(texts)
    theirs = [ident.classify(t) for t in texts]
    assert [lang for lang, _ in ours] == [lang for lang, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-9)
    assert [lang for lang, _ in ours[:2]] == ["en", "fr"]
    assert language_id.identify([]) == []


def test_fineweb_threshold_keeps_only_confident_english():
    assert language_id.FINEWEB_LANGUAGE_THRESHOLD == 0.65
    assert "Sec. 3.3" in language_id.FINEWEB_LANGUAGE_SOURCE
    texts = ["Python is an easy to learn, powerful programming language.",
             "Python est un langage de programmation puissant et facile à apprendre.", "ok"]
    kept = [d.kept for d in language_id.language_filter(texts)]
    assert kept == [True, False, False]  # English; French; too short: the prior, score < 0.65
    assert [d.kept for d in language_id.language_filter(texts, target="fr")] == [False, True, False]
    # Threshold 0 keeps every text whose top language is English, whatever its score.
    assert [d.kept for d in language_id.language_filter(texts, threshold=0.0)] == [True, False, True]


def test_shipped_sample_is_identified_correctly_at_paragraph_length():
    sample = language_id.load_multilingual_sample()
    assert Counter(sample.languages) == {lang: 28 for lang in ("en", "fr", "es", "pt", "pl",
                                                               "tr", "zh")}
    assert all(src.startswith("python/python-docs-") for src in sample.sources)
    decisions = language_id.language_filter(sample.texts)
    assert all(d.language == lang for d, lang in zip(decisions, sample.languages))
    assert [d.kept for d in decisions] == [lang == "en" for lang in sample.languages]
    # Cut to 10 characters, most paragraphs are misidentified or fall below 0.65.
    short = language_id.language_filter([language_id.snippet(t, 10) for t in sample.texts])
    assert sum(d.language == lang for d, lang in zip(short, sample.languages)) < 0.7 * len(short)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="texts must be a list"):
        language_id.identify("a bare string")
    with pytest.raises(ValueError, match="threshold"):
        language_id.language_filter(["text"], threshold=1.5)
    with pytest.raises(TypeError, match="target"):
        language_id.language_filter(["text"], target="")
    with pytest.raises(ValueError, match="n_chars"):
        language_id.snippet("text", 0)


def test_model_knows_97_languages_including_the_sample_s():
    codes = language_id.model_languages()
    assert len(codes) == 97  # Lui & Baldwin 2012: the shipped model covers 97 languages
    assert {"en", "fr", "es", "pt", "pl", "tr", "zh"} <= set(codes)
