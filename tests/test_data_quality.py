"""Tests for labutils.data_quality: Gopher heuristics, exact dedup, MinHash and banded LSH."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labutils import data_quality

PROSE = ("the cat sat with the dog and a bird of prey watched them from a tall tree near "
         "the house. ") * 6


def test_each_gopher_rule_fires_on_its_own_junk_and_passes_clean_prose():
    # One sentence six times on one line: only the repetition rule sees it.
    assert data_quality.gopher_reasons(PROSE) == ["top 4-gram covers 19% of characters > 16%"]
    clean = data_quality.synthetic_corpus(5, exact_dup_frac=0, near_dup_frac=0, junk_frac=0).docs
    assert all(data_quality.gopher_reasons(d) == [] for d in clean)
    assert "word count 3" in data_quality.word_count_rule("just three words")
    assert data_quality.mean_word_length_rule("a b c d e") is not None  # mean length 1
    assert data_quality.mean_word_length_rule("abc defghijk") is None
    assert data_quality.mean_word_length_rule("x" * 11) is not None
    assert "#" in data_quality.symbol_ratio_rule("#tag word " * 10)
    assert data_quality.symbol_ratio_rule("#tag " + "word " * 10) is None  # 1 hash in 11 words: 0.09 <= 0.1
    assert "ellipsis" in data_quality.ellipsis_lines_rule("read more...\nfine line\nclick here...")
    assert data_quality.ellipsis_lines_rule("a line...\nb\nc\nd") is None  # 25 % <= 30 %
    assert data_quality.bullet_lines_rule("- a\n- b\n- c\n- d\n- e\n- f\n- g\n- h\n- i\n- j") is not None
    assert "alphabetic" in data_quality.alpha_words_rule("1 2 3 word")
    assert data_quality.stop_words_rule("The cat, of course.") is None
    assert data_quality.stop_words_rule("cat dog the") is not None
    assert data_quality.duplicate_line_fraction("a\nb\na\na") == 0.5
    assert data_quality.duplicate_lines_rule("a\nb\na\na") is not None


def test_top_ngram_fraction_counts_all_occurrences_of_the_most_common_ngram():
    text = "aa bb aa bb cc"  # top 2-gram "aa bb" twice: 8 of 10 characters
    assert data_quality.top_ngram_char_fraction(text, 2) == pytest.approx(0.8)
    assert data_quality.top_ngram_rule(text) is not None
    assert data_quality.top_ngram_char_fraction("one", 2) == 0.0


def test_synthetic_junk_is_exactly_what_the_rules_drop():
    c = data_quality.synthetic_corpus(60, seed=1)
    for doc, kind in zip(c.docs, c.kinds):
        assert bool(data_quality.gopher_reasons(doc)) == kind.startswith("junk"), kind


def test_exact_dedup_drops_exactly_the_planted_copies():
    c = data_quality.synthetic_corpus(100, near_dup_frac=0, junk_frac=0, seed=2)
    kept = data_quality.exact_dedup(c.docs)
    assert len(kept) == 100
    assert data_quality.exact_hash("Hello,  World!") == data_quality.exact_hash("hello world")
    assert data_quality.exact_hash("hello world") != data_quality.exact_hash("hello word")


def test_minhash_estimate_is_within_its_standard_error():
    rng = np.random.default_rng(0)
    k = 256
    hasher = data_quality.MinHasher(k, seed=1)
    errors = {}
    for target in (0.2, 0.5, 0.8):
        errs = []
        for _ in range(40):
            a, b = data_quality.random_set_pair(target, 300, rng)
            j = len(set(a) & set(b)) / len(set(a) | set(b))
            est = data_quality.estimated_jaccard(hasher.signature_of_hashes(a), hasher.signature_of_hashes(b))
            errs.append(est - j)
        se = math.sqrt(j * (1 - j) / k)
        errors[target] = errs
        assert abs(np.mean(errs)) < 4 * se / math.sqrt(40)  # unbiased
        assert 0.7 * se < np.std(errs) < 1.3 * se  # spread = the binomial standard error


def test_lsh_candidate_rate_matches_the_s_curve():
    for s, (bands, rows) in ((0.5, (14, 8)), (0.72, (14, 8)), (0.85, (14, 8)), (0.6, (20, 5))):
        j, rate = data_quality.observed_candidate_rate(s, bands, rows, n_pairs=300, seed=3)
        assert abs(j - s) < 0.01
        p = data_quality.lsh_candidate_probability(j, bands, rows)
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / 300) + 0.01, s


def test_fineweb_s_curve_numbers():
    # FineWeb (Penedo et al. 2024; datatrove's MinhashConfig defaults): 5-grams, 112 hashes =
    # 14 bands of 8; a pair at Jaccard 0.8 is caught with probability 92.4 %, and the S-curve's
    # threshold is (1/14)^(1/8) ≈ 0.72.
    assert data_quality.lsh_candidate_probability(0.8, 14, 8) == pytest.approx(0.924, abs=5e-4)
    p = data_quality.lsh_candidate_probability(np.array([0.5, 0.7, 0.75, 0.85]), 14, 8)
    assert np.all(np.diff(p) > 0) and p[0] < 0.06 and p[-1] > 0.98  # a steep S-curve
    assert data_quality.lsh_threshold(14, 8) == pytest.approx(0.719, abs=1e-3)
    assert data_quality.FINEWEB_BANDS * data_quality.FINEWEB_ROWS == 112


def test_minhash_dedup_finds_the_planted_near_duplicates():
    c = data_quality.synthetic_corpus(100, exact_dup_frac=0, junk_frac=0, near_dup_frac=0.2, seed=4)
    kept = data_quality.minhash_dedup(c.docs)
    assert len(kept) == 100  # one document per planted cluster
    assert len({c.source[i] if c.kinds[i] == "near_dup" else i for i in kept}) == 100
    a = data_quality.shingles(c.docs[0])
    assert data_quality.jaccard(a, a) == 1.0 and data_quality.jaccard(a, {"x"}) == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="s must"):
        data_quality.lsh_candidate_probability(1.5, 2, 2)
    with pytest.raises(ValueError, match="bands"):
        data_quality.lsh_threshold(0, 8)
    with pytest.raises(ValueError, match="signatures"):
        data_quality.lsh_candidate_pairs(np.zeros((3, 10)), 2, 4)
    with pytest.raises(TypeError, match="text"):
        data_quality.normalize(3)
    with pytest.raises(ValueError, match="num_perm"):
        data_quality.MinHasher(0)
    with pytest.raises(ValueError, match="signatures"):
        data_quality.estimated_jaccard(np.zeros(3), np.zeros(4))


# ---- bad input: each check below was missing before (a wrong type passed or crashed deep inside)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NOT_A_GENERATOR = st.sampled_from([0, -1, 1.5, float("nan"), True, "rng", None])


@settings(max_examples=20, deadline=None)
@given(docs=st.sampled_from(["one document, not a list", b"bytes", 3, None, ["ok", 5]]))
def test_dedup_refuses_anything_but_a_list_of_str(docs):
    """A bare str used to be deduplicated character by character."""
    for dedup in (data_quality.exact_dedup, data_quality.minhash_dedup):
        with pytest.raises(TypeError, match="docs"):
            dedup(docs)


@settings(max_examples=20, deadline=None)
@given(rng=NOT_A_GENERATOR)
def test_random_set_pair_refuses_a_non_generator(rng):
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        data_quality.random_set_pair(0.5, 20, rng)


@settings(max_examples=20, deadline=None)
@given(seed=st.sampled_from([-1, 1.5, float("nan"), float("inf"), True, None, "0"]))
def test_seeds_are_checked(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        data_quality.synthetic_corpus(5, seed=seed)
    with pytest.raises((TypeError, ValueError), match="seed"):
        data_quality.observed_candidate_rate(0.5, 2, 2, n_pairs=2, size=10, seed=seed)


@settings(max_examples=20, deadline=None)
@given(s=st.sampled_from([True, False, "0.5", None]))
def test_lsh_probability_refuses_non_numeric_similarity(s):
    with pytest.raises(TypeError, match="s must be"):
        data_quality.lsh_candidate_probability(s, 14, 8)


@pytest.mark.parametrize("bad", [[1, 2], "ab", None, 3])
def test_jaccard_takes_sets(bad):
    with pytest.raises(TypeError, match="must be a set"):
        data_quality.jaccard(bad, {"a"})
