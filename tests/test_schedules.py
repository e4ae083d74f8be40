"""Tests for labutils.schedules: warm-up, cosine, WSD and inverse-sqrt learning rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labutils import schedule_runs, schedules
from labutils.train import TrainConfig, lr_at

PEAK = 3e-3


def test_warmup_is_linear_and_reaches_the_peak_on_its_last_step():
    for kind in schedules.KINDS:
        lrs = schedules.schedule_curve(kind, 200, peak_lr=PEAK, warmup_steps=20, decay_steps=40,
                               min_lr_ratio=0.1)
        assert lrs[:20] == pytest.approx(PEAK * np.arange(1, 21) / 20), kind
        assert lrs[19] == pytest.approx(PEAK)


def test_cosine_decays_monotonically_to_the_floor_and_hits_half_way_at_the_midpoint():
    lrs = schedules.schedule_curve("cosine", 1010, peak_lr=PEAK, warmup_steps=10, min_lr_ratio=0.1)
    decay = lrs[10:]
    assert np.all(np.diff(decay) <= 0)
    assert decay[0] == pytest.approx(PEAK)
    assert decay[500] == pytest.approx(PEAK * (0.1 + 0.9 * 0.5))  # cos(π/2) = 0
    assert decay[-1] == pytest.approx(0.1 * PEAK, rel=1e-3)
    assert lrs.min() >= 0.1 * PEAK


def test_wsd_is_flat_then_cools_down_to_exactly_the_floor():
    for cooldown in schedules.COOLDOWNS:
        lrs = schedules.schedule_curve("wsd", 1000, peak_lr=PEAK, warmup_steps=50, decay_steps=200,
                               min_lr_ratio=0.0, cooldown=cooldown)
        assert np.all(lrs[49:800] == PEAK)  # stable phase
        assert np.all(np.diff(lrs[800:]) < 0)  # strictly decreasing cooldown
        assert lrs[-1] == 0.0
    lin = schedules.schedule_curve("wsd", 1000, peak_lr=PEAK, decay_steps=200, cooldown="linear")
    sqrt = schedules.schedule_curve("wsd", 1000, peak_lr=PEAK, decay_steps=200, cooldown="1-sqrt")
    assert lin[899] == pytest.approx(PEAK / 2)  # half-way through a linear cooldown
    assert sqrt[899] == pytest.approx(PEAK * (1 - math.sqrt(0.5)))  # 1-sqrt drops faster
    assert np.all(sqrt[800:] <= lin[800:])


def test_schedules_are_continuous_no_jump_bigger_than_one_warmup_or_decay_step():
    for kind in schedules.KINDS:
        lrs = schedules.schedule_curve(kind, 500, peak_lr=1.0, warmup_steps=25, decay_steps=100,
                               min_lr_ratio=0.1)
        assert np.abs(np.diff(lrs)).max() <= 1 / 25 + 1e-12, kind


def test_inverse_sqrt_halves_when_the_step_quadruples():
    lr = lambda s: schedules.inverse_sqrt(s, 10_000, peak_lr=1.0, warmup_steps=100)  # noqa: E731
    assert lr(99) == 1.0
    assert lr(399) == pytest.approx(0.5)
    assert lr(1599) == pytest.approx(0.25)


def test_wsd_branch_equals_a_fresh_run_of_the_shorter_budget():
    # Before its cooldown, a WSD run's LR does not depend on the total: the long run's stable
    # phase is the shorter run's, step for step.
    long = schedules.schedule_curve("wsd", 1000, peak_lr=PEAK, warmup_steps=20, decay_steps=100)
    short = schedules.schedule_curve("wsd", schedules.wsd_branch_steps(500, 100), peak_lr=PEAK, warmup_steps=20,
                             decay_steps=100)
    assert len(short) == 600
    assert np.array_equal(long[:500], short[:500])
    cos_long = schedules.schedule_curve("cosine", 1000, peak_lr=PEAK, warmup_steps=20)
    cos_short = schedules.schedule_curve("cosine", 600, peak_lr=PEAK, warmup_steps=20)
    assert not np.allclose(cos_long[:500], cos_short[:500])  # cosine must be planned up front


def test_train_uses_the_same_cosine_formula():
    cfg = TrainConfig(tokens=1, lr=PEAK, warmup_frac=0.05, min_lr_ratio=0.1)
    for total in (1, 7, 100, 333):
        warm = max(1, round(0.05 * total))
        for step in range(total):
            assert lr_at(step, total, cfg) == schedules.cosine(step, total, peak_lr=PEAK,
                                                       warmup_steps=warm, min_lr_ratio=0.1)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="step"):
        schedules.cosine(100, 100, peak_lr=1.0)
    with pytest.raises(ValueError, match="peak_lr"):
        schedules.constant(0, 10, peak_lr=0.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.cosine(0, 10, peak_lr=1.0, warmup_steps=11)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        schedules.cosine(0, 10, peak_lr=1.0, min_lr_ratio=1.5)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.wsd(0, 10, peak_lr=1.0, warmup_steps=5, decay_steps=6)
    with pytest.raises(ValueError, match="cooldown"):
        schedules.wsd(0, 10, peak_lr=1.0, decay_steps=2, cooldown="exp")
    with pytest.raises(ValueError, match="kind"):
        schedules.lr_schedule("linear", 0, 10, peak_lr=1.0)
    with pytest.raises(TypeError, match="total_steps"):
        schedules.schedule_curve("cosine", 10.5, peak_lr=1.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.inverse_sqrt(0, 10, peak_lr=1.0, warmup_steps=0)


def test_real_wsd_branch_replays_the_long_runs_stable_phase():
    r = schedule_runs.cosine_vs_wsd(120, 80, decay_frac=0.25, warmup_steps=10, progress=False)
    assert r["prefix_identical"]  # the branch's stable phase is the long run's, bit for bit
    assert r["steps_paid"] == {"cosine": 200, "wsd": 150}
    for run in r["runs"].values():
        assert r["entropy_nats"] < run.eval_loss < 1.0  # learnt the bigrams (unigram H ≈ 2.6)
    with pytest.raises(ValueError, match="decay_frac"):
        schedule_runs.cosine_vs_wsd(120, 30, decay_frac=0.25, warmup_steps=10, progress=False)


# ---- the explorer's plotting helper checks its fractions (it used to overflow or accept a bool)
@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -0.1, 1.5, True, None])
def test_widget_plot_lr_schedule_checks_fractions(bad):
    import matplotlib.pyplot as plt

    from labutils.widgets.training_recipe import plot_lr_schedule

    fig, ax = plt.subplots()
    try:
        for kw in ("warmup_frac", "decay_frac"):
            args = {"warmup_frac": 0.1, "decay_frac": 0.2, kw: bad}
            with pytest.raises((TypeError, ValueError), match=kw):
                plot_lr_schedule(ax, "wsd", 100, args["warmup_frac"], args["decay_frac"], 0.1, "linear")
        with pytest.raises((TypeError, ValueError), match="total_steps"):
            plot_lr_schedule(ax, "wsd", bad, 0.1, 0.2, 0.1, "linear")
    finally:
        plt.close(fig)
