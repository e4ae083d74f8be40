"""Tests for labutils.network_needs: lecture 002's bandwidth requirement for GPT-1T (Sec. 8.3)."""

import math

import pytest

from labutils import hardware
from labutils import network_needs
from labutils.memory import three_d_comm_volume

CASE = network_needs.YIN_1T_CASE
TOKENS = CASE["samples_per_device"] * CASE["seq_len"]  # 4 sequences of 2048 tokens per GPU
MI250X_PEAK = hardware.get("MI250X").peak_flops("fp16")


def test_step_flops_matches_papers_4_9e4_over_r():
    """Yin et al. 2023, conclusions: t_step = 4.9e4 / R[TFLOP/s], i.e. 4.9e16 FLOPs per GPU.

    Hand value: 6 × 1e12 × 4 × 2048 = 4.9152e16, printed to two digits.
    """
    assert network_needs.step_flops_per_device(CASE["n_params"], TOKENS) == pytest.approx(4.9152e16)
    assert round(network_needs.step_flops_per_device(CASE["n_params"], TOKENS) / 1e16, 1) == 4.9


def test_coefficient_0_24_gb_s_per_tflop_s():
    """b_ideal = C_A / t_step = 0.24 × R[TFLOP/s] GB/s needs C_A = 3 × 4 bytes × 1e12 = 1.2e13 B."""
    per_tflop = network_needs.fsdp_required_bandwidth_bytes_per_s(CASE["n_params"], TOKENS, 1e12) / 1e9
    assert per_tflop == pytest.approx(1.2e13 / 4.9152e16 * 1e12 / 1e9)  # 0.2441
    assert round(per_tflop, 2) == CASE["printed_coefficient"]
    # with 16-bit all-gathers the requirement halves
    half = network_needs.fsdp_required_bandwidth_bytes_per_s(CASE["n_params"], TOKENS, 1e12, 2) / 1e9
    assert half == pytest.approx(per_tflop / 2)


def test_lectures_94_and_37_gb_s():
    """Lecture 002, Sec. 8.3: "37 and 94 GB/s". The MI250X peak (383 TFLOP/s, datasheet) gives
    93.5 GB/s; "about 40 %" of it (the paper's achievable share) gives 37.4 GB/s. Tolerance:
    half a unit of the printed integers. Note the order: the peak needs the *larger* figure."""
    peak = network_needs.fsdp_required_bandwidth_bytes_per_s(CASE["n_params"], TOKENS, MI250X_PEAK) / 1e9
    achievable = network_needs.fsdp_required_bandwidth_bytes_per_s(
        CASE["n_params"], TOKENS, CASE["achievable_fraction"] * MI250X_PEAK) / 1e9
    assert abs(peak - CASE["printed_bandwidth_gb_s"]["peak"]) <= 0.5
    assert abs(achievable - CASE["printed_bandwidth_gb_s"]["achievable"]) <= 0.5
    # both exceed Crusher's 25 GB/s per device: not enough for linear scaling (Sec. 8.3)
    assert min(peak, achievable) > CASE["link_bytes_per_s"] / 1e9


def test_step_time_overlap_and_no_overlap():
    # 320 s of compute, 12e12 bytes over 25 GB/s = 480 s of communication
    assert network_needs.step_time_s(320.0, 12e12, 25e9) == pytest.approx(480.0)
    assert network_needs.step_time_s(320.0, 12e12, 25e9, overlap=0.0) == pytest.approx(800.0)
    assert network_needs.step_time_s(320.0, 12e12, 25e9, overlap=0.5) == pytest.approx(640.0)
    assert network_needs.step_time_s(320.0, 1e12, 25e9) == pytest.approx(320.0)  # 40 s hides entirely
    assert network_needs.scaling_efficiency(320.0, 480.0) == pytest.approx(2 / 3)


def test_required_bandwidth_is_the_knee_of_the_step_time():
    """At exactly b_ideal the overlapped step equals the compute time; just below it, it grows."""
    compute = 4.9152e16 / 153.2e12
    comm = network_needs.fsdp_step_comm_bytes(CASE["n_params"])
    b = network_needs.required_bandwidth_bytes_per_s(comm, compute)
    assert network_needs.step_time_s(compute, comm, b) == pytest.approx(compute)
    assert network_needs.step_time_s(compute, comm, 0.9 * b) == pytest.approx(compute / 0.9)


def test_eq6_equals_fsdp_at_two_nodes_and_two_thirds_at_scale():
    """Lecture 002, Eq. 6: C_B = (TP/N + 1)·2·M_p. With TP = 6 (a Summit node) and N = 12 (the
    two pipeline stages), C_B = 1.5 × 2 M_p = 3 M_p, FSDP's C_A; for N ≫ TP it tends to 2 M_p."""
    psi = 10**9
    assert three_d_comm_volume(psi, n_devices=12, tp=6) == 3 * psi
    assert three_d_comm_volume(psi, n_devices=6 * 4608, tp=6) == pytest.approx(2 * psi, rel=1e-3)


@pytest.mark.parametrize("call, name", [
    (lambda: network_needs.required_bandwidth_bytes_per_s(0, 1.0), "comm_bytes"),
    (lambda: network_needs.required_bandwidth_bytes_per_s(1.0, -1.0), "compute_s"),
    (lambda: network_needs.fsdp_step_comm_bytes(10**9, 0), "bytes_per_element"),
    (lambda: network_needs.fsdp_step_comm_bytes(1.5, 4), "n_params"),
    (lambda: network_needs.fsdp_required_bandwidth_bytes_per_s(10**9, 1.0, math.nan), "device_flops_per_s"),
    (lambda: network_needs.step_time_s(1.0, 1.0, 0.0), "link_bytes_per_s"),
    (lambda: network_needs.step_time_s(1.0, 1.0, 1.0, overlap=1.5), "overlap"),
    (lambda: network_needs.scaling_efficiency(2.0, 1.0), "step_s"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_lectures_deepspeed_layout_on_summit_links():
    """Lecture 002, Sec. 5.2.1: TP within a (six-GPU) Summit node, 2 pipeline stages, ZeRO-1 over
    the rest. On 96 V100s with Summit's links, a 16.9B LLaMA-style model fits in the planner,
    and Sec. 7.1's TP = 12 is refused because it spans two nodes."""
    from labutils import plan
    from labutils.model import count_params

    cfg = plan.llama_like_config(36, 6144, seq_len=2048, vocab_size=50_304)
    goal = plan.Goal(compute_flops=1e22, accelerator="V100", n_gpus=96,
                     gpus_per_node=network_needs.SUMMIT_GPUS_PER_NODE, seq_len=2048,
                     global_batch_tokens=768 * 2048, dtype="fp16", n_params=count_params(cfg),
                     intra_link=network_needs.SUMMIT_NVLINK, inter_link=network_needs.SUMMIT_NODE_LINK)
    ds = plan.evaluate_layout(cfg, plan.Layout(dp=8, tp=6, pp=2, zero_stage=1), goal)
    assert ds.fits and ds.links["TP"] == network_needs.SUMMIT_NVLINK.name
    assert ds.tp_comm_s > 0
    problems = plan.layout_problems(cfg, plan.Layout(dp=8, tp=12, pp=1), goal)
    assert any("gpus_per_node=6" in p for p in problems)
    # the per-GPU share of a Summit node's 25 GB/s
    assert network_needs.SUMMIT_NODE_LINK.bandwidth_bytes_per_s == pytest.approx(25e9 / 6)
