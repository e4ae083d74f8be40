"""Tests for labutils.objectives: CLM, BERT's MLM and T5's span corruption."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from labutils import objectives

V = 1000
# Bad scalar arguments: negative, zero, NaN, ±inf, a bool, the wrong type.
BAD_SCALARS = st.sampled_from([-1, -0.5, float("nan"), float("inf"), -float("inf"), True, "3", None])


def test_clm_targets_are_inputs_shifted_by_one():
    x = np.arange(10)
    inp, tgt = objectives.clm_example(x)
    assert np.array_equal(inp, x[:-1]) and np.array_equal(tgt, x[1:])
    assert objectives.loss_tokens("clm", 10) == len(tgt)


def test_mlm_rates_follow_bert_15_percent_and_80_10_10():
    rng = np.random.default_rng(0)
    x = rng.integers(0, V - 1, 200_000)
    ex = objectives.mlm_example(x, vocab_size=V - 1, mask_id=V - 1, rng=rng)
    n = len(x)
    picked = ex.targets != objectives.IGNORE
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
    assert objectives.loss_tokens("mlm", 512) == pytest.approx(0.15 * 512)


@pytest.mark.parametrize("length", [20, 100, 512])
def test_span_corruption_has_t5_statistics_and_reconstructs_exactly(length):
    rng = np.random.default_rng(length)
    for _ in range(50):
        x = rng.integers(0, V - 200, length)
        ex = objectives.span_corruption_example(x, vocab_size=V, rng=rng)
        n_noise = round(0.15 * length)
        assert ex.noise_mask.sum() == n_noise
        assert ex.n_spans == max(1, round(n_noise / 3))
        starts = ex.noise_mask & ~np.concatenate([[False], ex.noise_mask[:-1]])
        assert starts.sum() == ex.n_spans
        assert not ex.noise_mask[0]  # T5 starts with a non-noise span
        assert len(ex.inputs) == length - n_noise + ex.n_spans
        assert len(ex.targets) == objectives.loss_tokens("span", length)
        assert ex.targets[0] == objectives.sentinel_id(0, V) and ex.targets[-1] == objectives.sentinel_id(ex.n_spans, V)
        rebuilt = objectives.reconstruct_from_spans(ex.inputs, ex.targets, vocab_size=V, n_spans=ex.n_spans)
        assert np.array_equal(rebuilt, x)


def test_span_lengths_average_three():
    rng = np.random.default_rng(1)
    lengths = []
    for _ in range(200):
        m = objectives.random_spans_mask(512, rng=rng)
        edges = np.diff(np.concatenate([[0], m.astype(int), [0]]))
        lengths += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert np.mean(lengths) == pytest.approx(77 / 26, rel=1e-9)  # round(76.8)=77 in 26 spans


def test_clm_scores_the_most_tokens_per_sequence():
    T = 512
    clm, mlm, span = (objectives.loss_tokens(k, T) for k in ("clm", "mlm", "span"))
    assert clm == 511 and mlm == pytest.approx(76.8) and span == 77 + 26 + 1
    assert clm / mlm > 6


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="tokens"):
        objectives.clm_example(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="tokens"):
        objectives.clm_example(np.array([3]))
    with pytest.raises(ValueError, match="mask_frac"):
        objectives.mlm_example(np.arange(5), vocab_size=10, mask_id=9, rng=rng, mask_frac=0.95)
    with pytest.raises(TypeError, match="rng"):
        objectives.mlm_example(np.arange(5), vocab_size=10, mask_id=9, rng=0)
    with pytest.raises(ValueError, match="below the sentinels"):
        objectives.span_corruption_example(np.arange(100), vocab_size=100, rng=rng)
    with pytest.raises(ValueError, match="objective"):
        objectives.loss_tokens("prefix", 10)
    with pytest.raises(ValueError, match="noise_density"):
        objectives.random_spans_mask(10, rng=rng, noise_density=0)


def test_iid_baseline_corrupts_each_token_independently_and_merges_runs():
    """T5's baseline (Raffel et al. 2020, Sec. 3.1.4): i.i.d. corruption at 15 %, each run of
    corrupted tokens becomes one sentinel. Expected values worked by hand: the noisy count is
    Binomial(T, p); a run starts at position 0 with probability p and at t > 0 with p(1 - p)."""
    rng = np.random.default_rng(7)
    T, p, reps = 200, 0.15, 400
    noisy, runs, targets = [], [], []
    for _ in range(reps):
        x = rng.integers(0, V - 200, T)
        ex = objectives.span_corruption_example(x, vocab_size=V, rng=rng, noise="iid")
        assert np.array_equal(objectives.reconstruct_from_spans(ex.inputs, ex.targets, vocab_size=V,
                                                       n_spans=ex.n_spans), x)
        noisy.append(ex.noise_mask.sum())
        runs.append(ex.n_spans)
        targets.append(len(ex.targets))
    n = reps
    assert abs(np.mean(noisy) - p * T) < 4 * np.sqrt(T * p * (1 - p) / n)
    want_runs = p + (T - 1) * p * (1 - p)  # 25.4 for T = 200
    assert abs(np.mean(runs) - want_runs) < 4 * np.std(runs) / np.sqrt(n)
    # the i.i.d. count differs from the 'spans' variant's fixed one, and matches loss_tokens
    assert np.var(noisy) > 0
    assert abs(np.mean(targets) - objectives.loss_tokens("span_iid", T)) < 4 * np.std(targets) / np.sqrt(n)
    assert objectives.loss_tokens("span_iid", T) == pytest.approx(30 + 0.15 + 199 * 0.15 * 0.85 + 1)
    # mean run length 1/(1 - p) away from the ends: shorter than the Sec. 3.3.4 variant's 3
    assert np.sum(noisy) / np.sum(runs) == pytest.approx(1 / (1 - p), rel=0.05)


def test_noise_kind_is_checked():
    with pytest.raises(ValueError, match="noise"):
        objectives.span_corruption_example(np.arange(20), vocab_size=V, rng=np.random.default_rng(0),
                                  noise="geometric")


@settings(max_examples=30, deadline=None)
@given(bad=st.sampled_from([-1, 2.5, float("nan"), True, "0", None]))
def test_sentinel_id_refuses_bad_input(bad):
    with pytest.raises((TypeError, ValueError), match="i"):
        objectives.sentinel_id(bad, V)
    with pytest.raises((TypeError, ValueError), match="vocab_size"):
        objectives.sentinel_id(0, bad)


def test_sentinel_id_refuses_an_index_beyond_the_vocabulary():
    with pytest.raises(ValueError, match="i must be"):
        objectives.sentinel_id(V, V)


@settings(max_examples=20, deadline=None)
@given(bad=st.sampled_from([0, 1.5, None, "rng", np.random.RandomState(0)]))
def test_span_builders_refuse_a_non_generator_rng(bad):
    for call in (lambda: objectives.random_spans_mask(20, rng=bad),
                 lambda: objectives.iid_noise_mask(20, rng=bad),
                 lambda: objectives.span_corruption_example(np.arange(20), vocab_size=V, rng=bad)):
        with pytest.raises(TypeError, match="rng must be a numpy Generator"):
            call()


@settings(max_examples=40, deadline=None)
@given(bad=BAD_SCALARS, objective=st.sampled_from(objectives.OBJECTIVES))
def test_loss_tokens_checks_every_argument_for_every_objective(bad, objective):
    """A bad mask_prob used to pass silently unless the objective was MLM."""
    for kw in ("mask_prob", "noise_density", "mean_span_length"):
        with pytest.raises((TypeError, ValueError), match=kw):
            objectives.loss_tokens(objective, 100, **{kw: bad})
