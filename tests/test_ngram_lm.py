"""Tests for labutils.ngram_lm: interpolated Kneser-Ney worked by hand, normalisation, perplexity."""

from __future__ import annotations

import math

import pytest

from labutils import ngram_lm


@pytest.fixture
def bigram():
    # Padded training text: "<s> a b </s>" and "<s> a c </s>"; vocabulary {a, b, c, </s>, <unk>}.
    return ngram_lm.train_kneser_ney(["a b", "a c"], order=2, discount=0.5)


def test_bigram_probabilities_worked_by_hand(bigram):
    # Unigram continuation counts: a after {<s>}, b after {a}, c after {a}, </s> after {b, c}:
    # N1+ = 1, 1, 1, 2 (sum 5, 4 types). P1(w) = max(N - 0.5, 0)/5 + 0.5·4/5 · 1/5.
    # An unseen context backs off entirely to the unigram level.
    def p1(w):
        return bigram.prob(w, ("unseen-context",))

    assert p1("a") == pytest.approx(0.5 / 5 + 0.08)  # 0.18
    assert p1("</s>") == pytest.approx(1.5 / 5 + 0.08)  # 0.38
    assert p1("<unk>") == pytest.approx(0.08)
    assert p1("never-seen") == pytest.approx(0.08)  # scored as <unk>
    # Bigram level, context "a": c(a b) = c(a c) = 1, c(a) = 2, two distinct followers.
    assert bigram.prob("b", ("a",)) == pytest.approx(0.5 / 2 + 0.5 * 2 / 2 * 0.18)  # 0.34
    assert bigram.prob("a", ("a",)) == pytest.approx(0.5 * 2 / 2 * 0.18)  # 0.09
    assert bigram.prob("a", ("<s>",)) == pytest.approx(1.5 / 2 + 0.5 / 2 * 0.18)  # 0.795
    assert bigram.prob("a") == bigram.prob("a", ("<s>",))  # a short context is a sentence start
    # Sentence "a b": P(a|<s>) P(b|a) P(</s>|b), P(</s>|b) = 0.5 + 0.5·0.38 = 0.69.
    logp = math.log(0.795 * 0.34 * 0.69)
    assert bigram.sentence_log_prob(["a", "b"]) == pytest.approx(logp)
    assert ngram_lm.perplexity(bigram, "a b") == pytest.approx(math.exp(-logp / 3))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_in_every_context(order):
    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]
    lm = ngram_lm.train_kneser_ney(texts, order=order, discount=0.75)
    for context in [(), ("the",), ("sat", "on"), ("on", "the"), ("zebra", "the"), ("<s>", "<s>")]:
        assert sum(lm.prob(w, context) for w in lm.vocab) == pytest.approx(1.0)


def test_perplexity_is_lower_on_text_like_the_training_text():
    train = ["the cat sat on the mat"] * 3 + ["the dog sat on the log"] * 3
    lm = ngram_lm.train_kneser_ney(train, order=3)
    seen = ngram_lm.perplexity(lm, "the cat sat on the log")
    shuffled = ngram_lm.perplexity(lm, "log the on sat cat the")
    foreign = ngram_lm.perplexity(lm, "le chat est sur le tapis")
    assert seen < shuffled < foreign
    # A model that always predicts uniformly over V has perplexity |V|: order 1, no data skew.
    flat = ngram_lm.train_kneser_ney(["x"], order=1, discount=0.5)  # V = {x, </s>, <unk>}
    assert flat.prob("x") == pytest.approx(0.5 / 2 + 0.5 * 2 / 2 / 3)


def test_tokenize_normalises_case_digits_and_punctuation():
    assert ngram_lm.tokenize("Python 3.12, out NOW!") == ["python", "0", ".", "00", ",", "out",
                                                        "now", "!"]


def test_buckets_follow_ccnet_percentiles():
    ppl = list(range(1, 11))  # 1..10: 30th percentile 3.7, 60th 6.4
    assert ngram_lm.perplexity_buckets(ppl) == ["head"] * 3 + ["middle"] * 3 + ["tail"] * 4
    assert (ngram_lm.CCNET_HEAD_PERCENTILE, ngram_lm.CCNET_TAIL_PERCENTILE) == (30, 60)


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="texts must be a list"):
        ngram_lm.train_kneser_ney("one string")
    with pytest.raises(ValueError, match="order"):
        ngram_lm.train_kneser_ney(["a"], order=0)
    with pytest.raises(ValueError, match="discount"):
        ngram_lm.train_kneser_ney(["a"], discount=1.0)
    with pytest.raises(ValueError, match="at least one"):
        ngram_lm.train_kneser_ney([])
    with pytest.raises(ValueError, match="tail_percentile"):
        ngram_lm.perplexity_buckets([1.0, 2.0], head_percentile=60, tail_percentile=30)
    with pytest.raises(TypeError, match="lm must be"):
        ngram_lm.perplexity("not a model", "text")


def test_on_the_shipped_data_junk_and_other_languages_score_high_perplexity():
    """Chapter 11, section 3.7's reading: a trigram model of tutorial/FAQ/how-to text puts the
    synthetic junk in CCNet's tail and scores other languages far above English."""
    import numpy as np

    from labutils import language_id, quality_classifier

    docs = quality_classifier.load_python_docs_paragraphs()
    reference = [t for s, t in zip(docs.sections, docs.texts) if s in ("tutorial", "faq", "howto")]
    lm = ngram_lm.train_kneser_ney(reference[::2], order=3)  # every other paragraph
    held_out = [t for s, t in zip(docs.sections, docs.texts) if s == "library"][:40]
    junk = quality_classifier.synthetic_spam(20, seed=3)
    ppl = [ngram_lm.perplexity(lm, t) for t in held_out + junk]
    buckets = ngram_lm.perplexity_buckets(ppl)
    assert all(b == "tail" for b in buckets[len(held_out):])
    sample = language_id.load_multilingual_sample()
    english = [ngram_lm.perplexity(lm, t) for t, g in zip(sample.texts, sample.languages)
               if g == "en"]
    french = [ngram_lm.perplexity(lm, t) for t, g in zip(sample.texts, sample.languages)
              if g == "fr"]
    assert np.median(french) > 4 * np.median(english)
