"""Mixed-precision training (Chapter 9): our dynamic loss scaler against torch.amp.GradScaler, and
real tiny GPT runs in fp16/bf16 with fp32 master weights against fp32 training."""

from __future__ import annotations

import random

import pytest
import torch

from labutils import mixed_precision
from labutils import precision
from labutils.markov import make_source
from labutils.model import tiny_config

STEPS = 40


@pytest.fixture(scope="module")
def streams() -> torch.Tensor:
    return make_source(vocab_size=64).sample(64, 1024, seed=0)


@pytest.fixture(scope="module")
def runs(streams) -> dict[str, mixed_precision.MixedPrecisionRun]:
    """Four runs whose gradients are shifted 16 binades down (the regime of large models)."""
    cfg = tiny_config()
    settings = {
        "fp32": mixed_precision.MixedPrecisionConfig("fp32", loss_scaling=False, steps=STEPS),
        "fp32_shifted": mixed_precision.MixedPrecisionConfig("fp32", loss_scaling=False, grad_shift_binades=16,
                                               steps=STEPS),
        "fp16_unscaled": mixed_precision.MixedPrecisionConfig("fp16", loss_scaling=False, grad_shift_binades=16,
                                                steps=STEPS),
        "fp16_scaled": mixed_precision.MixedPrecisionConfig("fp16", loss_scaling=True, grad_shift_binades=16,
                                              steps=STEPS),
        "bf16_unscaled": mixed_precision.MixedPrecisionConfig("bf16", loss_scaling=False, grad_shift_binades=16,
                                                steps=STEPS),
    }
    return {k: mixed_precision.train_mixed_precision(cfg, streams, c) for k, c in settings.items()}


def test_scaler_matches_torch_gradscaler_step_by_step():
    rng = random.Random(0)
    seq = [rng.random() < 0.15 for _ in range(300)]
    for kwargs in ({"init_scale": 2.0**16, "growth_interval": 3},
                   {"init_scale": 1024.0, "growth_interval": 7, "growth_factor": 4.0,
                    "backoff_factor": 0.25}):
        ours = mixed_precision.scale_trajectory(seq, **kwargs)
        theirs = mixed_precision.gradscaler_trajectory(seq, **kwargs)
        assert ours == theirs
    assert len(set(ours)) > 3  # the sequence both grows and backs off the scale


def test_scaler_rules():
    s = mixed_precision.DynamicLossScaler(init_scale=8.0, growth_interval=2)
    assert s.update(False) and s.scale == 8.0
    assert s.update(False) and s.scale == 16.0  # 2 clean steps: double
    assert not s.update(True) and s.scale == 8.0  # overflow: skip and halve
    assert s.clean_steps == 0
    with pytest.raises(ValueError, match="growth_interval"):
        mixed_precision.DynamicLossScaler(growth_interval=0)
    with pytest.raises(ValueError, match="backoff_factor"):
        mixed_precision.DynamicLossScaler(backoff_factor=1.5)


def test_min_loss_scale():
    fp16_normal = precision.smallest_normal("fp16")  # 2^-14
    assert mixed_precision.min_loss_scale(2.0**-20, fp16_normal) == 2.0**6
    assert mixed_precision.min_loss_scale(3e-9, fp16_normal) == 2.0**15  # 3e-9 · 2^15 ≈ 9.8e-5 >= 6.1e-5
    assert 3e-9 * 2.0**14 < fp16_normal
    assert mixed_precision.min_loss_scale(1.0, fp16_normal) == 1.0
    with pytest.raises(ValueError, match="grad_magnitude"):
        mixed_precision.min_loss_scale(0.0, fp16_normal)


def test_gradient_shift_is_exact_in_fp32(runs):
    assert runs["fp32_shifted"].losses == runs["fp32"].losses  # bit for bit


def test_fp16_gradients_underflow_without_loss_scaling(runs):
    assert min(runs["fp16_unscaled"].zero_grad_fraction) > 0.5
    assert max(runs["fp16_scaled"].zero_grad_fraction) < 0.01
    assert max(runs["bf16_unscaled"].zero_grad_fraction) < 0.01  # bf16 has fp32's range
    # Training stalls without scaling, and matches fp32 with it (or with bf16).
    last = {k: sum(r.losses[-5:]) / 5 for k, r in runs.items()}
    assert last["fp16_unscaled"] > last["fp32"] + 0.5
    assert last["fp16_scaled"] == pytest.approx(last["fp32"], abs=0.02)
    assert last["bf16_unscaled"] == pytest.approx(last["fp32"], abs=0.02)


def test_dynamic_scaling_backs_off_on_overflow(streams):
    cfg = mixed_precision.MixedPrecisionConfig("fp16", init_scale=2.0**24, steps=12, growth_interval=1000)
    run = mixed_precision.train_mixed_precision(tiny_config(), streams, cfg)
    assert run.skipped[0] and sum(run.skipped) >= 3
    assert run.scales[-1] < 2.0**24
    # every skipped step halves the scale, every clean step keeps it (growth interval not reached)
    for s0, s1, skipped in zip(run.scales, run.scales[1:], run.skipped):
        assert s1 == (s0 / 2 if skipped else s0)


def test_gradient_histogram_of_a_real_gpt(streams):
    g = mixed_precision.gpt_weight_gradients(tiny_config(), streams)
    out = precision.underflow_fractions(g, "fp16")
    assert out["normal"] > 0.5  # the tiny model's own gradients mostly fit fp16
    shifted = precision.underflow_fractions(g * 2.0**-16, "fp16")
    assert shifted["zero"] > 0.3 and shifted["normal"] < 0.01


def test_config_is_validated():
    with pytest.raises(ValueError, match="compute_dtype"):
        mixed_precision.MixedPrecisionConfig("fp8")
    with pytest.raises(ValueError, match="steps"):
        mixed_precision.MixedPrecisionConfig(steps=0)


# ---- bad input (these used to be accepted: a str iterated as flags, 1 read as loss scaling on)
@pytest.mark.parametrize("bad", ["TFT", 1, None, [0, 1], [True, "no"], [1.0]])
def test_scale_trajectories_need_a_sequence_of_bools(bad):
    for trajectory in (mixed_precision.scale_trajectory, mixed_precision.gradscaler_trajectory):
        with pytest.raises(TypeError, match="found_inf"):
            trajectory(bad)


@pytest.mark.parametrize("bad", [1, 0, -1, float("nan"), "yes", None])
def test_config_loss_scaling_must_be_a_bool(bad):
    with pytest.raises(TypeError, match="loss_scaling"):
        mixed_precision.MixedPrecisionConfig(loss_scaling=bad)


@pytest.mark.parametrize("bad", [1, "inf", None, 0.0])
def test_scaler_update_takes_a_bool(bad):
    with pytest.raises(TypeError, match="found_inf"):
        mixed_precision.DynamicLossScaler().update(bad)


def test_config_compute_dtype_must_be_a_name():
    """An unhashable value used to crash in the dict lookup with a message naming nothing."""
    with pytest.raises(ValueError, match="compute_dtype"):
        mixed_precision.MixedPrecisionConfig(compute_dtype=["fp16"])
