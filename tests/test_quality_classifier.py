"""Tests for labutils.quality_classifier: the labelling rule, hashed features, logistic
regression (gradient, separable data), precision/recall worked by hand, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from labutils import quality_classifier

TUTORIAL = (
    "A list is a sequence of values. For example, you can write a list of numbers in "
    "square brackets, and you can add new values to it later. This is useful because the "
    "list grows as your program runs. Lists can hold values of any type, such as strings "
    "or other lists, and you index them from zero. In other words, the first item of a "
    "list called numbers is numbers[0], and the last one is numbers[-1]. Try it in the "
    "interpreter and see what happens when you change one value."
)


def test_labelling_rule_adds_one_point_per_criterion():
    assert quality_classifier.educational_score(TUTORIAL) == 5
    assert quality_classifier.educational_score("") == 0
    short = "Lists hold values."
    assert quality_classifier.educational_score(short) == 0  # fewer than 15 words: not even point 1
    prose = (
        "The module provides functions that operate on sequences and return new sequences "
        "built from the items of the input."
    )  # 19 words, one sentence, no cue
    assert quality_classifier.educational_score(prose) == 1
    assert (
        quality_classifier.educational_score(prose + " For example, it sorts lists.") == 3
    )  # cue, 2 sentences
    spam = TUTORIAL + " Click here to buy cheap watches!!"
    assert quality_classifier.educational_score(spam) == 1  # a spam cue caps the score at 1
    assert len(quality_classifier.RUBRIC) == 5
    assert (
        quality_classifier.FINEWEB_EDU_THRESHOLD,
        "Sec. 4" in quality_classifier.FINEWEB_EDU_SOURCE,
    ) == (3, True)


def test_shipped_paragraphs_and_spam():
    paragraphs = quality_classifier.load_python_docs_paragraphs()
    assert len(paragraphs.texts) == len(paragraphs.sections) == len(paragraphs.sources) > 500
    assert {"tutorial", "library", "whatsnew", "license"} <= set(paragraphs.sections)
    spam = quality_classifier.synthetic_spam(30, seed=1)
    assert len(spam) == 30 and spam == quality_classifier.synthetic_spam(30, seed=1)
    assert all(quality_classifier.educational_score(page) <= 1 for page in spam)


def test_hashed_features_are_stable_unit_rows():
    x = quality_classifier.hashed_features(
        ["the cat sat", "the cat sat", "", "dogs bark loudly"], n_features=64
    )
    assert x.shape == (4, 64)
    assert np.array_equal(x[0], x[1])
    assert np.linalg.norm(x, axis=1) == pytest.approx([1, 1, 0, 1])
    # 3 words, max_n=2: 3 unigrams + 2 bigrams, each log(2) before scaling (barring collisions).
    big = quality_classifier.hashed_features(["the cat sat"], n_features=2**20)
    assert np.count_nonzero(big) == 5


def test_logistic_regression_gradient_and_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = (x[:, 0] - 2 * x[:, 1] > 0).astype(int)  # linearly separable
    params = rng.normal(size=6)
    loss, grad = quality_classifier._loss_and_grad(params, x, y.astype(float), 0.1)
    eps = 1e-6
    numeric = [
        (quality_classifier._loss_and_grad(params + eps * e, x, y.astype(float), 0.1)[0] - loss)
        / eps
        for e in np.eye(6)
    ]
    assert grad == pytest.approx(numeric, abs=1e-4)
    model = quality_classifier.train_logistic_regression(x, y, l2=1e-4)
    assert np.array_equal(quality_classifier.predict_proba(model, x) >= 0.5, y == 1)
    # The fitted weights point along the true direction (1, -2, 0, 0, 0).
    w = model.weights / np.linalg.norm(model.weights)
    assert w @ np.array([1, -2, 0, 0, 0]) / np.sqrt(5) > 0.95


def test_precision_recall_worked_by_hand():
    scores = [0.9, 0.8, 0.6, 0.4, 0.2]
    labels = [1, 0, 1, 1, 0]
    assert quality_classifier.precision_recall(scores, labels, 0.5) == pytest.approx((2 / 3, 2 / 3))
    assert quality_classifier.precision_recall(scores, labels, 0.85) == pytest.approx((1.0, 1 / 3))
    assert quality_classifier.precision_recall(scores, labels, 0.0) == pytest.approx((3 / 5, 1.0))
    assert quality_classifier.precision_recall(scores, labels, 0.95) == pytest.approx((1.0, 0.0))


def test_split_is_a_seeded_partition():
    train, test = quality_classifier.split_indices(10, 0.3, seed=0)
    assert len(test) == 3 and sorted(np.concatenate([train, test])) == list(range(10))
    assert np.array_equal(test, quality_classifier.split_indices(10, 0.3, seed=0)[1])


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="text must be a str"):
        quality_classifier.educational_score(3)
    with pytest.raises(ValueError, match="labels must be"):
        quality_classifier.train_logistic_regression(np.ones((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="features must be"):
        quality_classifier.train_logistic_regression(np.ones(3), [0, 1, 1])
    with pytest.raises(ValueError, match="l2"):
        quality_classifier.train_logistic_regression(np.ones((2, 2)), [0, 1], l2=-1)
    model = quality_classifier.train_logistic_regression(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match=r"shape \(docs, 2\)"):
        quality_classifier.predict_proba(model, np.ones((1, 3)))
    with pytest.raises(ValueError, match="test_fraction"):
        quality_classifier.split_indices(10, 1.5)
    with pytest.raises(ValueError, match="n_features"):
        quality_classifier.hashed_features(["a"], n_features=1)


def test_published_fineweb_edu_counts_are_consistent_where_the_sources_agree():
    paper = (
        quality_classifier.FINEWEB_EDU_PAPER_ANNOTATED,
        quality_classifier.FINEWEB_EDU_PAPER_TRAIN,
        quality_classifier.FINEWEB_EDU_PAPER_HELD_OUT,
    )
    assert paper[1] + paper[2] == paper[0] == 460_000  # Sec. 4: 410,000 + 50,000
    assert quality_classifier.FINEWEB_EDU_BLOG_ANNOTATED == 500_000  # Lecture 1's "500K samples"
    # the blog's held-out set (45k) is smaller than the paper's (50,000): the sources differ
    assert quality_classifier.FINEWEB_EDU_BLOG_HELD_OUT == 45_000
    assert quality_classifier.FINEWEB_EDU_PAPER_HELD_OUT - quality_classifier.FINEWEB_EDU_BLOG_HELD_OUT == 5_000
    assert (
        quality_classifier.FINEWEB_EDU_BLOG_TRAIN - quality_classifier.FINEWEB_EDU_PAPER_TRAIN
        == 40_000
    )  # they differ
    assert (quality_classifier.FINEWEB_EDU_F1, quality_classifier.FINEWEB_EDU_THRESHOLD) == (
        0.82,
        3,
    )
    assert "Training a classifier" in quality_classifier.FINEWEB_EDU_BLOG_SOURCE


def test_on_the_shipped_data_the_classifier_learns_the_teacher():
    """Chapter 11, section 3.6: trained on 70 % of the paragraphs and junk, the classifier beats
    keeping everything (precision = the positive rate) and drops every junk page."""
    paragraphs = quality_classifier.load_python_docs_paragraphs()
    spam = quality_classifier.synthetic_spam(60, seed=0)
    texts = paragraphs.texts + spam
    labels = np.array(
        [
            quality_classifier.educational_score(t) >= quality_classifier.FINEWEB_EDU_THRESHOLD
            for t in texts
        ],
        dtype=int,
    )
    train, test = quality_classifier.split_indices(len(texts), 0.3, seed=0)
    x = quality_classifier.hashed_features(texts)
    model = quality_classifier.train_logistic_regression(x[train], labels[train], l2=1e-4)
    p = quality_classifier.predict_proba(model, x[test])
    precision, recall = quality_classifier.precision_recall(p, labels[test], 0.5)
    assert precision > 2 * labels[test].mean() and recall > 0.3
    is_spam = test >= len(paragraphs.texts)
    assert is_spam.any() and (p[is_spam] < 0.5).all()
