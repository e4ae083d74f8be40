"""Tests for labutils.train: the generic training loop for labutils.nn.GPT."""

from __future__ import annotations

import pytest
import torch

from labutils.markov import make_source
from labutils.model import count_params, tiny_config
from labutils.train import TrainConfig, lr_at, sample_batch, train


@pytest.fixture(scope="module")
def data():
    src = make_source(vocab_size=16, order=1, concentration=0.3, seed=0)
    return src, src.sample(16, 2048, seed=1), src.sample(8, 512, seed=2)


def test_training_lowers_the_loss_towards_the_entropy(data):
    src, tokens, held_out = data
    cfg = tiny_config(vocab_size=16, seq_len=16, d_model=16, n_heads=2)
    tc = TrainConfig(tokens=20_000, batch_size=16, lr=1e-2, threads=1, progress=False)
    r = train(cfg, tc, tokens, held_out)
    assert r.train_losses[0][1] > src.conditional_entropy(0)  # starts above the unigram entropy
    assert r.eval_loss < src.conditional_entropy(0) - 0.3  # learns to use the context
    assert r.eval_loss > src.window_entropy(16) - 0.02  # but cannot beat the true entropy
    assert r.n_params == count_params(cfg)
    assert r.tokens_seen == r.steps * 16 * 16 >= 20_000
    assert r.flops == 6.0 * r.n_params * r.tokens_seen


def test_training_is_deterministic(data):
    _, tokens, held_out = data
    cfg = tiny_config(vocab_size=16, seq_len=16, d_model=16, n_heads=2)
    tc = TrainConfig(tokens=4_000, batch_size=8, seed=3, threads=1, progress=False)
    a = train(cfg, tc, tokens, held_out)
    b = train(cfg, tc, tokens, held_out)
    assert a.eval_loss == b.eval_loss
    assert a.train_losses == b.train_losses


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(tokens=1, lr=1.0, warmup_frac=0.1, min_lr_ratio=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_batches_are_next_token_pairs():
    streams = torch.arange(100).reshape(2, 50)
    x, y = sample_batch(streams, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert bool((y[:, :-1] == x[:, 1:]).all())
    assert bool((y - x == 1).all())  # windows never straddle the two streams


def test_bad_inputs_raise(data):
    _, tokens, _ = data
    cfg = tiny_config(vocab_size=16, seq_len=16)
    with pytest.raises(ValueError, match="tokens"):
        TrainConfig(tokens=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(tokens=10, lr=0.0)
    with pytest.raises(ValueError, match="warmup_frac"):
        TrainConfig(tokens=10, warmup_frac=1.5)
    with pytest.raises(TypeError, match="batch_size"):
        TrainConfig(tokens=10, batch_size=2.0)
    with pytest.raises(TypeError, match="integer token ids"):
        train(cfg, TrainConfig(tokens=10, progress=False), tokens.float())
    with pytest.raises(ValueError, match="vocab_size"):
        train(tiny_config(vocab_size=8, seq_len=16), TrainConfig(tokens=10, progress=False), tokens)
    with pytest.raises(ValueError, match="seq_len"):
        train(cfg, TrainConfig(tokens=10, progress=False), tokens[:, :10])
    with pytest.raises(TypeError, match="TrainConfig"):
        train(cfg, {"tokens": 10}, tokens)


# ---- bad input (used to return empty batches, crash with RuntimeError/AttributeError/OverflowError)
@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None, float("inf")])
def test_sample_batch_checks_sizes(bad):
    streams, gen = torch.zeros(2, 50, dtype=torch.long), torch.Generator().manual_seed(0)
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        sample_batch(streams, bad, 8, gen)
    with pytest.raises((TypeError, ValueError), match="seq_len"):
        sample_batch(streams, 2, bad, gen)


def test_sample_batch_checks_streams_window_and_generator():
    streams = torch.zeros(2, 50, dtype=torch.long)
    with pytest.raises(ValueError, match="seq_len"):
        sample_batch(streams, 2, 50, torch.Generator())  # needs seq_len + 1 <= 50
    with pytest.raises(TypeError, match="streams"):
        sample_batch([[0] * 50], 2, 8, torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        sample_batch(streams, 2, 8, None)


@pytest.mark.parametrize("bad", [float("inf"), -1, 0, 2.5, True, "100"])
def test_lr_at_checks_total_steps_and_cfg(bad):
    with pytest.raises((TypeError, ValueError), match="total_steps"):
        lr_at(0, bad, TrainConfig(tokens=1000))
    with pytest.raises(TypeError, match="cfg must be a TrainConfig"):
        lr_at(0, 10, bad)
