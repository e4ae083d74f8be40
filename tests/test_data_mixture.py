"""Tests for labutils.data_mixture: the weighted domain sampler, data stages, epochs, and the
mixture training loop (chapter 11, section 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labutils import data_mixture, schedules
from labutils.markov import make_source
from labutils.model import tiny_config


def _domains() -> list[torch.Tensor]:
    """Three domains whose token ids do not overlap, so a window tells its domain."""
    return [torch.arange(0, 100).reshape(2, 50), torch.arange(100, 200).reshape(2, 50),
            torch.arange(200, 300).reshape(2, 50)]


def test_normalize_weights_sums_to_one():
    assert np.allclose(data_mixture.normalize_weights([1, 3]), [0.25, 0.75])
    assert np.allclose(data_mixture.normalize_weights((0.0, 2.0, 2.0)), [0, 0.5, 0.5])


@pytest.mark.parametrize("bad, error", [([], ValueError), ([0, 0], ValueError),
                                        ([1, -1], ValueError), ([1, float("nan")], ValueError),
                                        ("ab", TypeError), (3, TypeError), ([1, "a"], TypeError)])
def test_normalize_weights_refuses_bad_input(bad, error):
    with pytest.raises(error, match="weights"):
        data_mixture.normalize_weights(bad)


def test_normalize_weights_checks_the_domain_count():
    with pytest.raises(ValueError, match="one entry per domain"):
        data_mixture.normalize_weights([1, 1], n_domains=3)


def test_sampler_frequencies_match_the_weights():
    weights = [0.2, 0.5, 0.3]
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(3)
    n = 0
    for _ in range(200):
        x, y, domain = data_mixture.sample_mixed_batch(_domains(), weights, 64, 8, gen)
        counts += np.bincount(domain.numpy(), minlength=3)
        n += len(domain)
    freq = counts / n
    sigma = np.sqrt(np.array(weights) * (1 - np.array(weights)) / n)
    assert np.all(np.abs(freq - weights) < 4 * sigma), (freq, weights)


def test_sampler_rows_come_from_their_domain_and_shift_by_one():
    gen = torch.Generator().manual_seed(1)
    x, y, domain = data_mixture.sample_mixed_batch(_domains(), [1, 1, 1], 32, 8, gen)
    assert x.shape == y.shape == (32, 8) and domain.shape == (32,)
    assert torch.equal(x // 100, domain[:, None].expand(-1, 8))  # ids 100d..100d+99 = domain d
    assert torch.equal(y[:, :-1], x[:, 1:])  # next-token targets
    assert torch.equal(y - x, torch.ones_like(x))  # arange streams: each target is input + 1


def test_sampler_never_draws_a_zero_weight_domain():
    gen = torch.Generator().manual_seed(2)
    _, _, domain = data_mixture.sample_mixed_batch(_domains(), [1, 0, 1], 500, 4, gen)
    assert not (domain == 1).any()
    assert (domain == 0).any() and (domain == 2).any()


def test_sampler_is_deterministic_per_seed():
    a = data_mixture.sample_mixed_batch(_domains(), [1, 2, 3], 16, 8, torch.Generator().manual_seed(5))
    b = data_mixture.sample_mixed_batch(_domains(), [1, 2, 3], 16, 8, torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_sampler_refuses_bad_input():
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(TypeError, match="domains"):
        data_mixture.sample_mixed_batch(torch.zeros(2, 50, dtype=torch.long), [1], 4, 8, gen)
    with pytest.raises(TypeError, match=r"domains\[0\]"):
        data_mixture.sample_mixed_batch([torch.zeros(2, 50)], [1], 4, 8, gen)
    with pytest.raises(ValueError, match="one entry per domain"):
        data_mixture.sample_mixed_batch(_domains(), [1, 1], 4, 8, gen)
    with pytest.raises(ValueError, match="batch_size"):
        data_mixture.sample_mixed_batch(_domains(), [1, 1, 1], 0, 8, gen)
    with pytest.raises(TypeError, match="generator"):
        data_mixture.sample_mixed_batch(_domains(), [1, 1, 1], 4, 8, 0)


def test_stage_weights_switch_at_the_stage_start():
    stages = [data_mixture.DataStage(0.0, (0.8, 0.2)), data_mixture.DataStage(0.8, (1, 1))]
    total = 150  # the second stage starts at step round(0.8 * 150) = 120
    assert data_mixture.stage_weights(0, total, stages) == pytest.approx((0.8, 0.2))
    assert data_mixture.stage_weights(119, total, stages) == pytest.approx((0.8, 0.2))
    assert data_mixture.stage_weights(120, total, stages) == pytest.approx((0.5, 0.5))
    assert data_mixture.stage_weights(149, total, stages) == pytest.approx((0.5, 0.5))


def test_stage_weights_follow_the_wsd_cooldown():
    """A stage that starts at the cooldown's first step covers exactly the steps whose LR decays."""
    total, decay = 200, 40
    stages = [data_mixture.DataStage(0.0, (1, 0)), data_mixture.DataStage(1 - decay / total, (0, 1))]
    lrs = schedules.schedule_curve("wsd", total, peak_lr=1.0, warmup_steps=10, decay_steps=decay)
    in_last_stage = np.array([data_mixture.stage_weights(s, total, stages)[1] == 1
                              for s in range(total)])
    decaying = np.r_[False, np.diff(lrs) < 0]  # the LR falls from step total - decay on
    decaying[total - decay] = True
    assert np.array_equal(in_last_stage, decaying)


def test_stages_refuse_bad_input():
    with pytest.raises(ValueError, match="start_frac"):
        data_mixture.DataStage(1.0, (1, 1))
    with pytest.raises(ValueError, match="start_frac"):
        data_mixture.DataStage(-0.1, (1, 1))
    with pytest.raises(ValueError, match="weights"):
        data_mixture.DataStage(0.0, (0, 0))
    late = [data_mixture.DataStage(0.5, (1, 1))]
    with pytest.raises(ValueError, match="start at start_frac 0"):
        data_mixture.stage_weights(0, 10, late)
    mixed = [data_mixture.DataStage(0, (1, 1)), data_mixture.DataStage(0.5, (1, 1, 1))]
    with pytest.raises(ValueError, match="same length"):
        data_mixture.stage_weights(0, 10, mixed)
    with pytest.raises(ValueError, match="step"):
        data_mixture.stage_weights(10, 10, [data_mixture.DataStage(0, (1,))])
    with pytest.raises(TypeError, match="DataStage"):
        data_mixture.stage_weights(0, 10, [(0, (1,))])


def test_domain_epochs():
    # 100 tokens of web, 10 of books; 1000 tokens drawn at 90/10: 9 epochs of web, 10 of books
    assert np.allclose(data_mixture.domain_epochs([100, 10], [0.9, 0.1], 1000), [9, 10])
    with pytest.raises(ValueError, match="domain_tokens"):
        data_mixture.domain_epochs([100, 0], [0.5, 0.5], 10)
    with pytest.raises(ValueError, match="one entry per weight"):
        data_mixture.domain_epochs([100], [0.5, 0.5], 10)


@pytest.fixture(scope="module")
def two_sources():
    a = make_source(vocab_size=16, order=1, concentration=0.3, seed=0)
    b = make_source(vocab_size=16, order=1, concentration=0.3, seed=1)
    return (a.sample(16, 256, seed=10), b.sample(16, 256, seed=11),
            a.sample(8, 64, seed=20), b.sample(8, 64, seed=21))


def _run(two_sources, weights, steps=60, **kw):
    tr_a, tr_b, ho_a, ho_b = two_sources
    cfg = tiny_config(vocab_size=16, seq_len=16, d_model=16, n_heads=2, n_layers=1)
    return data_mixture.train_on_mixture(
        cfg, [tr_a, tr_b], weights, steps, batch_size=8,
        lr_fn=lambda s, n: schedules.cosine(s, n, peak_lr=1e-2, warmup_steps=5),
        eval_sets={"A": ho_a, "B": ho_b}, **kw)


def test_training_on_a_domain_lowers_its_loss_most(two_sources):
    """A model trained only on A ends with a lower loss on A than one trained only on B, and
    vice versa: the mixture weight moves per-domain loss in the expected direction."""
    only_a, only_b = _run(two_sources, [1, 0]), _run(two_sources, [0, 1])
    assert only_a.domain_tokens[1] == 0 and only_b.domain_tokens[0] == 0
    assert only_a.final_loss["A"] < only_b.final_loss["A"] - 0.1
    assert only_b.final_loss["B"] < only_a.final_loss["B"] - 0.1


def test_training_is_deterministic_and_records_curves(two_sources):
    r1 = _run(two_sources, [0.5, 0.5], steps=20, eval_every=10)
    r2 = _run(two_sources, [0.5, 0.5], steps=20, eval_every=10)
    assert [s for s, _ in r1.eval_curves["A"]] == [0, 10, 20]
    assert r1.eval_curves == r2.eval_curves
    assert sum(r1.domain_tokens) == 20 * 8 * 16  # steps · batch · seq_len
    assert r1.eval_curves["A"][-1][1] < r1.eval_curves["A"][0][1]  # it learned something


def test_staged_weights_reach_the_sampler(two_sources):
    """With a stage that switches from all-A to all-B, the token counts match the stage lengths."""
    stages = [data_mixture.DataStage(0, (1, 0)), data_mixture.DataStage(0.75, (0, 1))]
    r = _run(two_sources, lambda s, n: data_mixture.stage_weights(s, n, stages), steps=20)
    assert r.domain_tokens == (15 * 8 * 16, 5 * 8 * 16)


def test_train_on_mixture_refuses_bad_input(two_sources):
    with pytest.raises(TypeError, match="eval_sets"):
        _run(two_sources, [1, 1], eval_sets={})
    with pytest.raises(TypeError, match="lr_fn"):
        data_mixture.train_on_mixture(tiny_config(vocab_size=16), [two_sources[0]], [1], 2,
                                      lr_fn=0.01, eval_sets={"A": two_sources[2]})
    with pytest.raises(ValueError, match="steps"):
        _run(two_sources, [1, 1], steps=0)


def test_continued_training_starts_from_the_given_model(two_sources):
    """init_model continues a copy: its first held-out point equals the base model's last one,
    the base model is unchanged, and training on B alone lowers B's loss further."""
    base = _run(two_sources, [1, 0], steps=40)
    before = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    cont = _run(two_sources, [0, 1], steps=20, eval_every=10, init_model=base.model)
    assert cont.eval_curves["A"][0][1] == pytest.approx(base.final_loss["A"], abs=1e-6)
    assert cont.eval_curves["B"][0][1] == pytest.approx(base.final_loss["B"], abs=1e-6)
    assert cont.final_loss["B"] < base.final_loss["B"]
    assert all(torch.equal(before[k], v) for k, v in base.model.state_dict().items())
    with pytest.raises(TypeError, match="init_model"):
        _run(two_sources, [1, 1], steps=2, init_model=torch.nn.Linear(2, 2))
