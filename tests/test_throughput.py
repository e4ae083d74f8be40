"""Tests for labutils.throughput, labutils.published_mfu, labutils.measure and the planner widget.

Reference numbers: the lecture 000_f52c65b7512ce437.txt (worked example, scaling tables, 500× on
1000 processors), 002_2b6ef2fa7201a799.txt (120·P²), and the papers cited in
labutils/published_mfu.py. Live measurements are checked for sanity only (positive, finite,
self-consistent), never against a speed: the machine is shared.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labutils import hardware
from labutils import throughput
from labutils.flops import flops_per_token, training_flops
from labutils.measure import (
    PeakFlops,
    autocast_context,
    datasheet_peak,
    gpu_spec_name,
    measure_matmul_flops,
    measure_matmul_flops_by_size,
    measure_training_step,
    torch_threads,
)
from labutils.model import TransformerConfig, count_params, tiny_config
from labutils.published_mfu import (
    KORTHIKANTI_530B,
    LLAMA3_405B_8K,
    LLAMA3_405B_16K,
    LLAMA3_405B_16K_LONG,
    LLAMA_65B,
    MEGATRON_1T,
    MEGATRON_146B,
    PALM_540B,
    PUBLISHED_RUNS,
    PUBLISHED_TIME_ESTIMATES,
)

A100_PEAK = hardware.get("A100").peak_flops("bf16")  # the lecture's F = 312 TFLOP/s


# ------------------------------------------------------------------------------------------
# lecture 000: the worked example (256 A100s, 7B, 2048 × 4096 tokens, 12.7 s per step)
# ------------------------------------------------------------------------------------------
@pytest.fixture
def worked_example_throughput() -> float:
    return throughput.tokens_per_second(2048, 4096, 12.7)


def test_peak_is_the_lectures_312_tflops():
    assert A100_PEAK == 312e12


def test_worked_example_throughput(worked_example_throughput):
    # 2048·4096 / 12.7 = 660 520.3 tokens/s; the lecture writes "≈ 0.66 million"
    assert worked_example_throughput == pytest.approx(2048 * 4096 / 12.7, rel=1e-12)
    assert abs(worked_example_throughput - 0.66e6) <= 0.005e6


def test_worked_example_per_gpu(worked_example_throughput):
    per_gpu = throughput.tokens_per_second_per_device(worked_example_throughput, 256)
    assert per_gpu == pytest.approx(2580.16, abs=0.01)  # lecture: "≈ 2580"
    assert round(per_gpu) == 2580


def test_worked_example_mfu(worked_example_throughput):
    eps = throughput.mfu(7e9, worked_example_throughput, 256, A100_PEAK)
    assert eps == pytest.approx(0.34733, abs=1e-5)  # lecture rounds to 35 %
    assert round(100 * eps) == 35


def test_worked_example_time(worked_example_throughput):
    hours = throughput.training_time_s(150e9, worked_example_throughput) / throughput.S_PER_HOUR
    assert hours == pytest.approx(63.08, abs=0.01)  # lecture: "≈ 63 hours"
    assert round(hours) == 63


# ------------------------------------------------------------------------------------------
# scalability
# ------------------------------------------------------------------------------------------
def test_strong_scaling_table_matches_lecture():
    rows = throughput.strong_scaling_table(2048)
    assert [r.n_devices for r in rows] == [1, 4, 16, 64, 256]
    assert [r.per_device_batch for r in rows] == [2048, 512, 128, 32, 8]
    assert [r.global_batch for r in rows] == [2048] * 5


def test_weak_scaling_table_matches_lecture():
    rows = throughput.weak_scaling_table(32)
    assert [r.per_device_batch for r in rows] == [32] * 5
    assert [r.global_batch for r in rows] == [32, 128, 512, 2048, 8192]


def test_strong_scaling_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="not divisible"):
        throughput.strong_scaling_table(2048, (1, 3))


def test_500x_on_1000_processors_needs_serial_fraction_at_most_0_1_percent():
    s = throughput.max_serial_fraction(500, 1000)
    assert s == pytest.approx(1 / 999, rel=1e-12)  # lecture: "cannot exceed 0.1 %"
    assert round(100 * s, 1) == 0.1
    assert throughput.amdahl_speedup(s, 1000) == pytest.approx(500, rel=1e-12)
    assert throughput.amdahl_speedup(0.002, 1000) < 500


def test_amdahl_and_gustafson_known_values():
    assert throughput.amdahl_speedup(0.0, 256) == 256
    assert throughput.amdahl_speedup(1.0, 256) == 1
    assert throughput.amdahl_speedup(0.1, 10) == pytest.approx(1 / (0.1 + 0.9 / 10))
    assert throughput.gustafson_speedup(0.1, 10) == pytest.approx(0.1 + 0.9 * 10)
    assert throughput.parallel_efficiency(throughput.amdahl_speedup(0.0, 64), 64) == 1.0
    assert throughput.speedup(100.0, 4.0) == 25.0


fractions = st.floats(0.0, 1.0, allow_nan=False)
counts = st.integers(1, 100_000)


@given(fractions, counts)
def test_amdahl_bounds(s, n):
    sp = throughput.amdahl_speedup(s, n)
    assert 1.0 - 1e-12 <= sp <= n * (1 + 1e-12)
    if s > 0:
        assert sp <= 1.0 / s * (1 + 1e-12)


@given(fractions, counts)
def test_gustafson_bounds(s, n):
    g = throughput.gustafson_speedup(s, n)
    assert 1.0 - 1e-12 <= g <= n * (1 + 1e-12)
    assert g >= throughput.amdahl_speedup(s, n) * (1 - 1e-12)


@given(fractions, counts, counts)
def test_speedups_monotone_in_n(s, n1, n2):
    lo, hi = sorted((n1, n2))
    assert throughput.amdahl_speedup(s, lo) <= throughput.amdahl_speedup(s, hi) * (1 + 1e-12)
    assert throughput.gustafson_speedup(s, lo) <= throughput.gustafson_speedup(s, hi) * (1 + 1e-12)


@given(fractions, fractions, counts)
def test_speedups_decrease_with_serial_fraction(s1, s2, n):
    lo, hi = sorted((s1, s2))
    assert throughput.amdahl_speedup(hi, n) <= throughput.amdahl_speedup(lo, n) * (1 + 1e-12)
    assert throughput.gustafson_speedup(hi, n) <= throughput.gustafson_speedup(lo, n) * (1 + 1e-12)


@given(st.integers(2, 100_000), st.floats(0.0, 1.0))
def test_max_serial_fraction_round_trip(n, t):
    target = 1.0 + t * (n - 1)  # any speedup in [1, n]
    s = throughput.max_serial_fraction(target, n)
    assert 0.0 <= s <= 1.0 + 1e-12
    assert throughput.amdahl_speedup(min(s, 1.0), n) == pytest.approx(target, rel=1e-9)


@settings(max_examples=50)
@given(st.floats(1e6, 1e12), st.floats(1e-6, 0.5), st.floats(1e-6, 0.5), st.integers(1, 10_000))
def test_mfu_and_time_monotone_in_throughput(n_params, m1, m2, k):
    # throughputs that give MFU m1, m2 <= 0.5 by hand: T = m·K·F / (6N)
    lo, hi = sorted(m * k * A100_PEAK / (6 * n_params) for m in (m1, m2))
    assert throughput.mfu(n_params, lo, k, A100_PEAK) == pytest.approx(min(m1, m2), rel=1e-12)
    assert throughput.mfu(n_params, lo, k, A100_PEAK) <= throughput.mfu(n_params, hi, k, A100_PEAK)
    assert throughput.training_time_s(1e9, lo) >= throughput.training_time_s(1e9, hi)
    # MFU is exactly linear in throughput and in N, inversely in K·F
    assert throughput.mfu(n_params, 2 * lo, k, A100_PEAK) == pytest.approx(2 * throughput.mfu(n_params, lo, k, A100_PEAK))


def test_mfu_above_one_raises_naming_the_inputs():
    """No device beats its peak: an MFU > 1 means a wrong input, never a number to print."""
    # the lecture's worked example with the peak typed in TFLOP/s instead of FLOP/s
    tokens_per_s = throughput.tokens_per_second(2048, 4096, 12.7)
    with pytest.raises(ValueError, match=r"MFU = .* > 1.*peak_flops_per_device=312"):
        throughput.mfu(7e9, tokens_per_s, 256, 312.0)
    # 6·7e9·1e9 = 4.2e19 FLOP/s asked of one 312 TFLOP/s device: 134,615 x its peak
    with pytest.raises(ValueError, match=r"n_params=7e\+09, tokens_per_s=1e\+09, n_devices=1"):
        throughput.mfu(7e9, 1e9, 1, A100_PEAK)
    with pytest.raises(ValueError, match=r"HFU = .* > 1"):
        throughput.hfu(7e9, 1e9, 1, A100_PEAK)
    # exactly at the peak is allowed: T = K·F / (6N)
    assert throughput.mfu(1e9, 312e12 / 6e9, 1, A100_PEAK) == pytest.approx(1.0)


@settings(max_examples=50)
@given(st.floats(1e6, 1e12), st.floats(0.0, 1.0), st.floats(0.0, 1e11))
def test_hfu_at_least_mfu(n_params, r, attn):
    tokens_per_s = 100.0  # keeps HFU <= (8e12 + 4/3·1e11)·100 / (8·312e12) ≈ 0.33
    m = throughput.mfu(n_params, tokens_per_s, 8, A100_PEAK, attention_flops_per_token=attn)
    h = throughput.hfu(n_params, tokens_per_s, 8, A100_PEAK, attention_flops_per_token=attn, recompute_fraction=r)
    assert h >= m * (1 - 1e-12)
    back = throughput.implied_recompute_fraction(n_params, tokens_per_s, 8, A100_PEAK, h, attention_flops_per_token=attn)
    assert back == pytest.approx(r, abs=1e-9)


def test_full_recomputation_is_8n():
    # Narayanan et al. 2021, Eq. (3): four passes instead of three
    assert throughput.hardware_flops_per_token(1e9, recompute_fraction=1.0) == pytest.approx(8e9)
    assert throughput.hardware_flops_per_token(1e9, recompute_fraction=0.0) == pytest.approx(6e9)
    assert throughput.hfu(7e9, 1e6, 256, A100_PEAK) == pytest.approx(4 / 3 * throughput.mfu(7e9, 1e6, 256, A100_PEAK))


def test_megatron_formula_ratio():
    with_r = throughput.megatron_flops_per_token(128, 25600, 2048, 51200, recompute=True)
    without = throughput.megatron_flops_per_token(128, 25600, 2048, 51200, recompute=False)
    assert with_r / without == pytest.approx(4 / 3, rel=0.002)  # logits are not recomputed
    # the 72·l·h² core is 6 × the 12·l·h² transformer-layer parameters
    assert without == pytest.approx(6 * 12 * 128 * 25600**2 * (1 + 2048 / (6 * 25600) + 51200 / (12 * 128 * 25600)))


# ------------------------------------------------------------------------------------------
# lecture 002: compute ≈ 120·P², t = C / R, E = t × power; projections
# ------------------------------------------------------------------------------------------
@given(st.floats(1e6, 1e13))
def test_chinchilla_compute_is_120_p_squared(p):
    assert throughput.chinchilla_compute_flops(p) == pytest.approx(120 * p * p, rel=1e-12)
    assert throughput.chinchilla_compute_flops(p) == pytest.approx(training_flops(p, 20 * p), rel=1e-12)


def test_chinchilla_tokens_for_the_lectures_7b_example():
    # 20 tokens per parameter (Hoffmann et al. 2022): 7B parameters -> 140B tokens, by hand;
    # the lecture's worked example rounds the budget up to 150B.
    assert throughput.chinchilla_tokens(7e9) == 140e9
    assert throughput.chinchilla_tokens(7e9, 150 / 7) == pytest.approx(150e9)


def test_compute_optimal_1t_model_by_hand():
    """Chapter 3's 1T example: 6·P·(20·P) with P = 1e12 is 1.2e26 FLOPs (120 YFLOP, not ZFLOP),
    and on 1024 MI250X at 35 % of the bf16 peak that is decades, not years."""
    c = throughput.chinchilla_compute_flops(1e12)
    assert c == 6 * 1e12 * 20e12 == pytest.approx(1.2e26)
    rate = 1024 * hardware.get("MI250X").peak_flops("bf16") * 0.35
    years = throughput.time_from_rate_s(c, rate) / throughput.S_PER_YEAR
    assert years == pytest.approx(1.2e26 / (1024 * 383e12 * 0.35) / (365.25 * 86_400), rel=1e-3)
    assert 25 < years < 30


def test_time_and_energy_formulas():
    c = throughput.chinchilla_compute_flops(175e9)
    assert throughput.time_from_rate_s(c, 1e18) == pytest.approx(120 * 175e9**2 / 1e18)
    assert throughput.energy_j(100.0, 8, 400.0) == 100.0 * 8 * 400.0
    assert throughput.energy_from_efficiency_j(c, 0.235e12) == pytest.approx(c / 0.235e12)
    assert throughput.projected_time_s(6.3e21, 256, A100_PEAK, 0.35) == pytest.approx(6.3e21 / (256 * 312e12 * 0.35))


def test_petaflop_s_days_gpt3():
    # Brown et al. 2020, Table D.1: GPT-3 175B used 3.14e23 FLOPs = 3.64e3 petaflop/s-days
    assert throughput.petaflop_s_days(3.14e23) == pytest.approx(3.64e3, rel=0.002)


def test_project_training_worked_example():
    p = throughput.project_training(7e9, 150e9, 256, "A100-80GB", 0.35, usd_per_device_hour=2.0)
    assert p.compute_flops == pytest.approx(6 * 7e9 * 150e9)
    assert p.time_s == pytest.approx(p.compute_flops / (256 * 312e12 * 0.35))
    assert p.avg_power_w == hardware.get("A100-80GB").tdp_watts
    assert p.energy_j == pytest.approx(p.time_s * 256 * p.avg_power_w)
    assert p.device_hours == pytest.approx(p.time_s / 3600 * 256)
    assert p.cost_usd == pytest.approx(p.device_hours * 2.0)
    # at the measured 34.7 % MFU the projection reproduces the lecture's 63 h
    eps = throughput.mfu(7e9, throughput.tokens_per_second(2048, 4096, 12.7), 256, A100_PEAK)
    q = throughput.project_training(7e9, 150e9, 256, "A100", eps)
    assert q.time_s / 3600 == pytest.approx(63.08, abs=0.01)


# ------------------------------------------------------------------------------------------
# published MFU figures, recomputed from their inputs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("run", PUBLISHED_RUNS, ids=lambda r: r.name)
def test_published_run_checks(run):
    checks = run.checks()
    for c in checks:
        assert c.ok, f"{run.name}: {c.quantity} reported {c.reported}, recomputed {c.recomputed:.4f} ({c.why})"


def test_at_least_two_published_utilizations_are_recomputed():
    utils = [c for r in PUBLISHED_RUNS for c in r.checks() if c.quantity in ("MFU", "% of peak (HFU)")]
    assert len(utils) >= 2


def test_palm_mfu_with_and_without_attention():
    # Chowdhery et al. 2022, App. B: 46.2 % with 12·L·H·Q·T counted; 45.7 % from 6N alone
    assert PALM_540B.recomputed_mfu() == pytest.approx(0.462, abs=0.001)
    assert PALM_540B.recomputed_mfu(attention=False) == pytest.approx(0.457, abs=0.001)
    assert PALM_540B.attention_flops_per_token == 12 * 118 * 48 * 256 * 2048
    # HFU 57.8 % implies about three quarters of the forward pass was rematerialized
    assert 0.7 < PALM_540B.implied_recompute_fraction() < 0.8


def test_megatron_percent_of_peak_is_an_hfu():
    assert MEGATRON_1T.checks()[0].recomputed == pytest.approx(163 / 312)
    assert MEGATRON_1T.recomputed_mfu() == pytest.approx(0.75 * 163 / 312, rel=0.005)


def test_llama_time_and_mfu():
    days, gpu_hours = LLAMA_65B.checks()
    assert days.recomputed == pytest.approx(20.8, abs=0.05)
    assert gpu_hours.recomputed == pytest.approx(1.4e12 / 380 / 3600)
    assert LLAMA_65B.recomputed_mfu(attention=False) == pytest.approx(6 * 65.2e9 * 380 / 312e12)


def test_megatron_table1_rows_are_self_consistent():
    # Narayanan et al. 2021, Table 1: the printed parameter count follows from the shape (Eq. (2),
    # here via count_params of a GPT with V = 51200, s = 2048), and the aggregate PFLOP/s column
    # divided by the GPUs gives back the per-GPU TFLOP/s column (to its rounding, ±0.5).
    rows = (  # run, layers, hidden, heads, printed params (B), aggregate PFLOP/s
        (MEGATRON_1T, 128, 25600, 160, 1008.0, 502.0),
        (MEGATRON_146B, 80, 12288, 96, 145.6, 227.1),
    )
    for run, layers, hidden, heads, params_b, aggregate_pflops in rows:
        assert run.megatron_shape == (layers, hidden, 2048, 51200)
        cfg = TransformerConfig(vocab_size=51200, seq_len=2048, d_model=hidden, n_layers=layers, n_heads=heads)
        assert count_params(cfg) / 1e9 == pytest.approx(params_b, abs=0.05)
        assert run.n_params == params_b * 1e9
        assert abs(aggregate_pflops * 1e15 / run.n_devices - run.achieved_flops_per_device) <= 0.5e12


def test_llama3_tokens_per_batch_consistent():
    # Table 4 (arXiv v3): TP·CP·PP·DP = GPUs, and DP × batch per DP × sequence ≈ 16M tokens, for
    # each row. (Earlier versions print DP 4 in the last row, which fails both checks.)
    rows = (  # run, TP, CP, PP, DP, sequences per DP group, sequence length
        (LLAMA3_405B_8K, 8, 1, 16, 64, 32, 8192),
        (LLAMA3_405B_16K, 8, 1, 16, 128, 16, 8192),
        (LLAMA3_405B_16K_LONG, 8, 16, 16, 8, 16, 131072),
    )
    for run, tp_, cp, pp, dp, b, s in rows:
        assert tp_ * cp * pp * dp == run.n_devices
        assert dp * b * s == pytest.approx(16e6, rel=0.05)
        assert f"DP {dp};" in run.note
    assert LLAMA3_405B_16K.peak_flops_per_device == hardware.get("H100-SXM").peak_flops("bf16")


def test_selective_recomputation_speedup():
    # Korthikanti et al. 2022: 54.2 % vs 42.1 % MFU is "29 % faster"; full recomputation's HFU
    # (× 8/6) is about as high as the selective run's MFU
    assert KORTHIKANTI_530B.check().ok
    assert KORTHIKANTI_530B.hfu_full() == pytest.approx(0.421 * 8 / 6)
    assert abs(KORTHIKANTI_530B.hfu_full() - KORTHIKANTI_530B.mfu_selective) < 0.025


@pytest.mark.parametrize("est", PUBLISHED_TIME_ESTIMATES, ids=lambda e: e.name)
def test_megatron_time_estimates(est):
    c = est.check()
    assert c.ok, f"{est.name}: reported {c.reported} days, recomputed {c.recomputed:.2f}"


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
BAD_POSITIVE = [0, -1, -1e-9, float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize("bad", BAD_POSITIVE)
def test_bad_positive_reals(bad):
    with pytest.raises(ValueError, match="step_time_s"):
        throughput.tokens_per_second(2048, 4096, bad)
    with pytest.raises(ValueError, match="n_tokens"):
        throughput.training_time_s(bad, 1.0)
    with pytest.raises(ValueError, match="tokens_per_s"):
        throughput.mfu(7e9, bad, 256, A100_PEAK)
    with pytest.raises(ValueError, match="peak_flops_per_device"):
        throughput.mfu(7e9, 1.0, 256, bad)
    with pytest.raises(ValueError, match="n_params"):
        throughput.mfu(bad, 1.0, 256, A100_PEAK)
    with pytest.raises(ValueError, match="compute_flops"):
        throughput.petaflop_s_days(bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0001, float("nan"), float("inf")])
def test_bad_serial_fraction(bad):
    with pytest.raises(ValueError, match="serial_fraction"):
        throughput.amdahl_speedup(bad, 8)
    with pytest.raises(ValueError, match="serial_fraction"):
        throughput.gustafson_speedup(bad, 8)


@pytest.mark.parametrize("bad", [0, 0.5, -3, float("nan")])
def test_bad_processor_count(bad):
    with pytest.raises(ValueError, match="n must"):
        throughput.amdahl_speedup(0.1, bad)
    with pytest.raises(ValueError, match="n must"):
        throughput.gustafson_speedup(0.1, bad)


def test_bad_types_and_ranges():
    with pytest.raises(TypeError, match="global_batch"):
        throughput.tokens_per_second(2048.0, 4096, 12.7)
    with pytest.raises(TypeError, match="n_devices"):
        throughput.mfu(7e9, 1.0, True, A100_PEAK)
    with pytest.raises(TypeError, match="step_time_s"):
        throughput.tokens_per_second(2048, 4096, "12.7")
    with pytest.raises(ValueError, match="n_devices"):
        throughput.tokens_per_second_per_device(1.0, 0)
    with pytest.raises(ValueError, match="attention_flops_per_token"):
        throughput.mfu(7e9, 1.0, 1, A100_PEAK, attention_flops_per_token=-1.0)
    with pytest.raises(ValueError, match="recompute_fraction"):
        throughput.hfu(7e9, 1.0, 1, A100_PEAK, recompute_fraction=1.5)
    with pytest.raises(ValueError, match="target_speedup"):
        throughput.max_serial_fraction(2000, 1000)
    with pytest.raises(ValueError, match="n must be > 1"):
        throughput.max_serial_fraction(1, 1)
    with pytest.raises(ValueError, match="mfu_fraction"):
        throughput.projected_time_s(1e20, 8, A100_PEAK, 1.5)
    with pytest.raises(ValueError, match="usd_per_device_hour"):
        throughput.cost_usd(10.0, 8, -1.0)
    with pytest.raises(ValueError, match="unknown accelerator"):
        throughput.project_training(7e9, 1e9, 8, "A7000", 0.4)
    with pytest.raises(ValueError, match="exactly one"):
        type(PALM_540B)(name="x", n_params=1e9, n_devices=1, accelerator="A100", source="-")


# ------------------------------------------------------------------------------------------
# live measurement (sanity only: no speed thresholds on a shared machine)
# ------------------------------------------------------------------------------------------
def test_measured_matmul_peak_is_sane():
    peak = measure_matmul_flops((128, 256), min_run_time_s=0.05, num_threads=1)
    assert peak.label == "measured"
    assert math.isfinite(peak.flops_per_s) and peak.flops_per_s > 0
    assert "torch.mm" in peak.description and "1 thread" in peak.description
    curve = measure_matmul_flops_by_size((16, 64), min_run_time_s=0.02, num_threads=1)
    assert [n for n, _ in curve] == [16, 64] and all(f > 0 and math.isfinite(f) for _, f in curve)


def test_torch_threads_restores_setting():
    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        with torch_threads(0):
            pass
    assert torch.get_num_threads() == before


@pytest.mark.slow
def test_measured_training_step_is_sane():
    cfg = tiny_config()
    peak = PeakFlops(1e10, "measured", "fixed for the test")
    m = measure_training_step(cfg, 4, peak=peak, warmup=1, repeats=5, num_threads=1)
    assert len(m.step_times_s) == 5 and all(t > 0 for t in m.step_times_s)
    assert m.tokens_per_s == pytest.approx(4 * cfg.seq_len / m.step_time_s)
    assert m.flops_per_token == flops_per_token(cfg, training=True, attention=True)
    assert m.mfu == pytest.approx(m.flops_per_token * m.tokens_per_s / 1e10)
    assert m.mfu > 0 and math.isfinite(m.mfu)
    # six AdamW steps on one batch lower the loss below the uniform-guess loss ln(V)
    assert m.final_loss < math.log(cfg.vocab_size)
    assert m.device == "cpu" and m.autocast == "none" and m.num_threads == 1


@pytest.mark.slow
def test_bf16_autocast_path_runs_on_cpu_too():
    """The branch a GPU takes (forward under bf16 autocast) checked here on the CPU: the matmuls
    really produce bf16, the weights stay fp32, and the steps still train."""
    from labutils.nn import GPT

    cfg = tiny_config()
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.seq_len))
    with autocast_context("cpu", "bf16"):
        logits, _ = model(idx)
    assert logits.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with autocast_context("cpu", "none"):
        assert model(idx)[0].dtype == torch.float32
    m = measure_training_step(cfg, 4, peak=PeakFlops(1e10, "measured", "-"), warmup=1, repeats=3,
                              num_threads=1, autocast="bf16")
    assert m.autocast == "bf16" and m.final_loss < math.log(cfg.vocab_size)


def test_measure_bad_input():
    with pytest.raises(ValueError, match="autocast"):
        measure_training_step(tiny_config(), 1, peak=PeakFlops(1e10, "measured", "-"), autocast="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        measure_training_step(tiny_config(), 0, peak=PeakFlops(1e10, "measured", "-"))
    with pytest.raises(TypeError, match="cfg"):
        measure_training_step("tiny", 1, peak=PeakFlops(1e10, "measured", "-"))
    with pytest.raises(ValueError, match="sizes"):
        measure_matmul_flops(())


@pytest.mark.parametrize(
    "device_name, spec",
    [("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
     ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("NVIDIA H200", "H200"),
     ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB")],
)
def test_gpu_spec_name(device_name, spec):
    assert gpu_spec_name(device_name) == spec


def test_gpu_spec_name_refuses_unknown_and_maps_variants_exactly():
    with pytest.raises(ValueError, match="no labutils.hardware spec"):
        gpu_spec_name("NVIDIA GeForce RTX 4090")
    # the PCIe part has its own datasheet peak, not the SXM one a substring match used to give
    assert gpu_spec_name("NVIDIA H100 PCIe") == "H100-PCIe"
    assert hardware.get("H100-PCIe").peak_flops("bf16") < hardware.get("H100-SXM").peak_flops("bf16")
    assert datasheet_peak("H100-SXM").flops_per_s == hardware.get("H100-SXM").peak_flops("bf16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_measurement_uses_bf16_and_datasheet_peak():
    m = measure_training_step(tiny_config(), 8, warmup=1, repeats=3)
    assert m.autocast == "bf16" and m.peak.label == "datasheet"
    assert 0 < m.mfu < 1


# ------------------------------------------------------------------------------------------
# the planner widget
# ------------------------------------------------------------------------------------------
def test_planner_shows_tested_numbers():
    from labutils.widgets.throughput import planner, planner_dtype, planner_projection

    box = planner()
    html = box.children[-1].value
    p = planner_projection(256, "A100-80GB", 7e9, 150e9, 0.35, 2.0)
    assert f"{p.time_days:,.2f} days" in html and f"${p.cost_usd:,.0f}" in html
    gpu, power = box.children[1], box.children[5]
    gpu.value = "H100-SXM"
    assert power.value == hardware.get("H100-SXM").tdp_watts
    box.children[0].value = 0  # zero GPUs: the validation message is shown, nothing raises
    assert "n_devices" in box.children[-1].value
    assert planner_dtype("V100") == "fp16" and planner_dtype("TPU-v4") == "bf16"


# ------------------------------------------------------------------------------------------
# bad input, swept over every public function of labutils.throughput
# ------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS = [0, 0.0, -1, -1e-9, NAN, INF, -INF, True, "1", None]
BAD_NON_NEG = [-1, -1e-9, NAN, INF, -INF, True, "1", None]
BAD_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_FRACTION = [-0.1, 1.0001, NAN, INF, True, "0.5", None]
BAD_OPEN_FRACTION = [0, -0.1, 1.0001, NAN, INF, True, "0.5", None]
BAD_AT_LEAST_ONE = [0, 0.5, -1, NAN, INF, True, "2", None]
F = 312e12

THROUGHPUT_BAD_CASES = [
    (lambda v: throughput.tokens_per_step(v, 4096), "global_batch", BAD_INT),
    (lambda v: throughput.tokens_per_second(2048, v, 12.7), "seq_len", BAD_INT),
    (lambda v: throughput.tokens_per_second(2048, 4096, v), "step_time_s", BAD_POS),
    (lambda v: throughput.tokens_per_second_per_device(v, 8), "tokens_per_s", BAD_POS),
    (lambda v: throughput.tokens_per_second_per_device(1e5, v), "n_devices", BAD_INT),
    (lambda v: throughput.model_flops_per_token(v), "n_params", BAD_POS),
    (lambda v: throughput.model_flops_per_token(7e9, attention_flops_per_token=v), "attention_flops_per_token", BAD_NON_NEG),
    (lambda v: throughput.mfu(v, 1e3, 8, F), "n_params", BAD_POS),
    (lambda v: throughput.mfu(7e9, v, 8, F), "tokens_per_s", BAD_POS),
    (lambda v: throughput.mfu(7e9, 1e3, v, F), "n_devices", BAD_INT),
    (lambda v: throughput.mfu(7e9, 1e3, 8, v), "peak_flops_per_device", BAD_POS),
    (lambda v: throughput.hardware_flops_per_token(7e9, recompute_fraction=v), "recompute_fraction", BAD_FRACTION),
    (lambda v: throughput.hfu(7e9, v, 8, F), "tokens_per_s", BAD_POS),
    (lambda v: throughput.hfu(7e9, 1e3, 8, F, recompute_fraction=v), "recompute_fraction", BAD_FRACTION),
    (lambda v: throughput.implied_recompute_fraction(7e9, 1e3, 8, F, v), "hfu_fraction", BAD_OPEN_FRACTION),
    (lambda v: throughput.utilization(v, F), "achieved_flops_per_s", BAD_POS),
    (lambda v: throughput.utilization(1e12, v), "peak_flops_per_s", BAD_POS),
    (lambda v: throughput.training_time_s(v, 1e5), "n_tokens", BAD_POS),
    (lambda v: throughput.megatron_flops_per_token(v, 128, 2048, 51200), "n_layers", BAD_INT),
    (lambda v: throughput.megatron_flops_per_token(8, 128, 2048, 51200, recompute=v), "recompute", [0, 1, "yes", None]),
    (lambda v: throughput.speedup(v, 1.0), "time_one_device_s", BAD_POS),
    (lambda v: throughput.amdahl_speedup(v, 8), "serial_fraction", BAD_FRACTION),
    (lambda v: throughput.gustafson_speedup(0.1, v), "n must", BAD_AT_LEAST_ONE),
    (lambda v: throughput.parallel_efficiency(v, 8), "speedup_value", BAD_POS),
    (lambda v: throughput.max_serial_fraction(v, 1000), "target_speedup", [0.5, 2000, NAN, INF, True, "2", None]),
    (lambda v: throughput.strong_scaling_table(v), "global_batch", BAD_INT),
    (lambda v: throughput.strong_scaling_table(2048, v), "device_counts", [None, 4, "1,2", (), [1, 0], [1, 2.5]]),
    (lambda v: throughput.weak_scaling_table(32, v), "device_counts", [None, 4, "1,2", (), [1, -2], [True]]),
    (lambda v: throughput.chinchilla_compute_flops(v), "n_params", BAD_POS),
    (lambda v: throughput.chinchilla_compute_flops(1e9, v), "tokens_per_param", BAD_POS),
    (lambda v: throughput.chinchilla_tokens(v), "n_params", BAD_POS),
    (lambda v: throughput.time_from_rate_s(1e20, v), "flops_per_s", BAD_POS),
    (lambda v: throughput.projected_time_s(1e20, 8, F, v), "mfu_fraction", BAD_OPEN_FRACTION),
    (lambda v: throughput.energy_j(10.0, 8, v), "avg_power_w", BAD_POS),
    (lambda v: throughput.energy_from_efficiency_j(1e20, v), "flops_per_joule", BAD_POS),
    (lambda v: throughput.petaflop_s_days(v), "compute_flops", BAD_POS),
    (lambda v: throughput.cost_usd(10.0, 8, v), "usd_per_device_hour", BAD_NON_NEG),
    (lambda v: throughput.project_training(7e9, v, 8, "A100", 0.4), "n_tokens", BAD_POS),
    (lambda v: throughput.project_training(7e9, 1e9, 8, v, 0.4), "accelerator", [None, 3, True]),
    (lambda v: throughput.project_training(7e9, 1e9, 8, "A100", 0.4, dtype=v), "dtype", [None, 16]),
    (lambda v: throughput.project_training(7e9, 1e9, 8, "A100", v), "mfu_fraction", BAD_OPEN_FRACTION),
]


@pytest.mark.parametrize("call, name, bad_values", THROUGHPUT_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(THROUGHPUT_BAD_CASES)])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_every_public_function_refuses_bad_input(call, name, bad_values, data):
    """Negative, zero, NaN, inf, bool and wrong types: ValueError or TypeError naming the argument.
    (An empty or non-sequence device_counts, an HFU above 1 and a non-str accelerator used to
    give a number, an empty table or an unhelpful error.)"""
    bad = data.draw(st.sampled_from(bad_values))
    with pytest.raises((ValueError, TypeError), match=name):
        call(bad)
