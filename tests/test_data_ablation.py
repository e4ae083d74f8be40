"""Tests for labutils.data_ablation: candidate corpora and the ablation runs (chapter 11, 4.1)."""

from __future__ import annotations

import pytest
import torch

from labutils import data_ablation, schedules
from labutils.markov import make_source
from labutils.model import tiny_config


@pytest.fixture(scope="module")
def source():
    return make_source(vocab_size=16, order=1, concentration=1.0, seed=0)


@pytest.fixture(scope="module")
def clean(source):
    return source.sample(32, 128, seed=1)


def test_junk_streams_replace_the_share_asked_for(clean):
    corpus, junk = data_ablation.with_junk_streams(clean, 0.25, 16, seed=3)
    assert corpus.shape == clean.shape and corpus.dtype == clean.dtype
    assert int(junk.sum()) == 8  # round(0.25 * 32)
    assert torch.equal(corpus[~junk], clean[~junk])  # clean streams untouched
    assert not (corpus[junk] == clean[junk]).all(dim=1).any()  # every junk stream changed
    assert int(corpus.min()) >= 0 and int(corpus.max()) < 16


def test_junk_streams_are_uniform_noise(clean, source):
    """Junk costs log V nats per token under the true source's unigram-free view: its empirical
    token frequencies are flat, unlike the source's Zipf-like ones."""
    corpus, junk = data_ablation.with_junk_streams(clean, 1.0, 16, seed=0)
    counts = torch.bincount(corpus.flatten(), minlength=16).double()
    expected = corpus.numel() / 16
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45  # 15 degrees of freedom: P(chi2 > 45) < 1e-4 for uniform tokens
    assert source.nll(corpus) > source.nll(clean) + 1.0  # junk is far less likely


def test_repeat_to_and_duplicates_keep_the_token_count(clean):
    rep = data_ablation.repeat_to(clean[:5], 32, seed=0)
    assert rep.shape == (32, 128)
    assert data_ablation.unique_stream_count(rep) == 5
    counts = sorted(int((rep == row).all(dim=1).sum()) for row in clean[:5])
    assert counts == [6, 6, 6, 7, 7]  # 32 = 5 * 6 + 2: each stream 6 or 7 times
    dup = data_ablation.with_duplicates(clean, 0.125, seed=0)
    assert dup.shape == clean.shape
    assert data_ablation.unique_stream_count(dup) == 4
    assert data_ablation.unique_stream_count(clean) == 32


def test_corpus_builders_refuse_bad_input(clean):
    with pytest.raises(ValueError, match="junk_frac"):
        data_ablation.with_junk_streams(clean, 1.5, 16)
    with pytest.raises(TypeError, match="tokens"):
        data_ablation.with_junk_streams(clean[0], 0.5, 16)
    with pytest.raises(TypeError, match="integer"):
        data_ablation.with_duplicates(clean.float(), 0.5)
    with pytest.raises(ValueError, match="unique_frac"):
        data_ablation.with_duplicates(clean, -0.1)
    with pytest.raises(ValueError, match="n_streams"):
        data_ablation.repeat_to(clean, 0)


def test_ablation_ranks_clean_above_junk_and_duplicates(source, clean):
    """Same budget and seed: the clean corpus gives the lowest held-out loss, and every run
    records the same evaluation steps."""
    cfg = tiny_config(vocab_size=16, seq_len=16, d_model=16, n_heads=2, n_layers=1)
    junk, _ = data_ablation.with_junk_streams(clean, 0.5, 16, seed=1)
    candidates = {"clean": clean, "junk": junk,
                  "duplicated": data_ablation.with_duplicates(clean, 1 / 32, seed=1)}
    runs = data_ablation.run_ablation(
        candidates, source.sample(8, 64, seed=2), cfg, 80, batch_size=8, eval_every=20,
        lr_fn=lambda s, n: schedules.cosine(s, n, peak_lr=1e-2, warmup_steps=5))
    final = {k: r.final_loss["held-out"] for k, r in runs.items()}
    assert final["clean"] < final["junk"] and final["clean"] < final["duplicated"], final
    assert final["clean"] > source.entropy_rate()  # no model beats the entropy rate
    assert {tuple(s for s, _ in r.eval_curves["held-out"]) for r in runs.values()} == {
        (0, 20, 40, 60, 80)}


def test_ablation_refuses_unequal_budgets(source, clean):
    cfg = tiny_config(vocab_size=16, seq_len=16)
    with pytest.raises(ValueError, match="same number of tokens"):
        data_ablation.run_ablation({"a": clean, "b": clean[:4]}, clean, cfg, 2,
                                   lr_fn=lambda s, n: 1e-3)
    with pytest.raises(TypeError, match="candidates"):
        data_ablation.run_ablation({}, clean, cfg, 2, lr_fn=lambda s, n: 1e-3)
