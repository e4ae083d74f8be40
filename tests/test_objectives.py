"""Tests for labutils.objectives: CLM, BERT's MLM and T5's span corruption."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labutils import objectives as O

V = 1000


def test_clm_targets_are_inputs_shifted_by_one():
    x = np.arange(10)
    inp, tgt = O.clm_example(x)
    assert np.array_equal(inp, x[:-1]) and np.array_equal(tgt, x[1:])
    assert O.loss_tokens("clm", 10) == len(tgt)


def test_mlm_rates_follow_bert_15_percent_and_80_10_10():
    rng = np.random.default_rng(0)
    x = rng.integers(0, V - 1, 200_000)
    ex = O.mlm_example(x, vocab_size=V - 1, mask_id=V - 1, rng=rng)
    n = len(x)
    picked = ex.targets != O.IGNORE
    p = picked.mean()
    assert abs(p - 0.15) < 4 * math.sqrt(0.15 * 0.85 / n)
    k = picked.sum()
    for share, want in ((ex.masked.sum() / k, 0.8), (ex.randomized.sum() / k, 0.1),
                        (ex.kept.sum() / k, 0.1)):
        assert abs(share - want) < 4 * math.sqrt(want * (1 - want) / k)
    assert np.all(ex.inputs[ex.masked] == V - 1)
    assert np.array_equal(ex.inputs[ex.kept], x[ex.kept])
    assert np.array_equal(ex.targets[picked], x[picked])
    assert np.array_equal(ex.inputs[~picked], x[~picked])  # unpicked positions untouched
    # random replacements are uniform over the vocabulary: rarely equal to the original
    assert (ex.inputs[ex.randomized] == x[ex.randomized]).mean() < 0.01
    assert O.loss_tokens("mlm", 512) == pytest.approx(0.15 * 512)


@pytest.mark.parametrize("length", [20, 100, 512])
def test_span_corruption_has_t5_statistics_and_reconstructs_exactly(length):
    rng = np.random.default_rng(length)
    for _ in range(50):
        x = rng.integers(0, V - 200, length)
        ex = O.span_corruption_example(x, vocab_size=V, rng=rng)
        n_noise = round(0.15 * length)
        assert ex.noise_mask.sum() == n_noise
        assert ex.n_spans == max(1, round(n_noise / 3))
        starts = ex.noise_mask & ~np.concatenate([[False], ex.noise_mask[:-1]])
        assert starts.sum() == ex.n_spans
        assert not ex.noise_mask[0]  # T5 starts with a non-noise span
        assert len(ex.inputs) == length - n_noise + ex.n_spans
        assert len(ex.targets) == O.loss_tokens("span", length)
        assert ex.targets[0] == O.sentinel_id(0, V) and ex.targets[-1] == O.sentinel_id(ex.n_spans, V)
        rebuilt = O.reconstruct_from_spans(ex.inputs, ex.targets, vocab_size=V, n_spans=ex.n_spans)
        assert np.array_equal(rebuilt, x)


def test_span_lengths_average_three():
    rng = np.random.default_rng(1)
    lengths = []
    for _ in range(200):
        m = O.random_spans_mask(512, rng=rng)
        edges = np.diff(np.concatenate([[0], m.astype(int), [0]]))
        lengths += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert np.mean(lengths) == pytest.approx(77 / 26, rel=1e-9)  # round(76.8)=77 in 26 spans


def test_clm_scores_the_most_tokens_per_sequence():
    T = 512
    clm, mlm, span = (O.loss_tokens(k, T) for k in O.OBJECTIVES)
    assert clm == 511 and mlm == pytest.approx(76.8) and span == 77 + 26 + 1
    assert clm / mlm > 6


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="tokens"):
        O.clm_example(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="tokens"):
        O.clm_example(np.array([3]))
    with pytest.raises(ValueError, match="mask_frac"):
        O.mlm_example(np.arange(5), vocab_size=10, mask_id=9, rng=rng, mask_frac=0.95)
    with pytest.raises(TypeError, match="rng"):
        O.mlm_example(np.arange(5), vocab_size=10, mask_id=9, rng=0)
    with pytest.raises(ValueError, match="below the sentinels"):
        O.span_corruption_example(np.arange(100), vocab_size=100, rng=rng)
    with pytest.raises(ValueError, match="objective"):
        O.loss_tokens("prefix", 10)
    with pytest.raises(ValueError, match="noise_density"):
        O.random_spans_mask(10, rng=rng, noise_density=0)
