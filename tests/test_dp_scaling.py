"""Data-parallel scaling in the α–β model: compute from labutils.hardware, overlap of bucketed
all-reduces, strong and weak scaling, the critical batch size, and the lecture's tables."""

from __future__ import annotations

import math

import pytest

from labutils import hardware
from labutils.parallel.data import cost

LECTURE_GPUS = [1, 4, 16, 64, 256]  # 000_f52c65b7512ce437.txt, "Scalability in Distributed ML Example"


def test_compute_time_is_6NT_over_achieved_peak():
    c = cost.DPCluster(7e9, accelerator="A100-80GB", mfu=0.5)
    fwd, bwd = cost.compute_time_s(c, 4096)
    peak = hardware.get("A100-80GB").peak_flops("bf16")
    assert fwd + bwd == pytest.approx(6 * 7e9 * 4096 / (0.5 * peak))
    assert bwd == pytest.approx(2 * fwd)


def test_lecture_strong_and_weak_tables_are_reproduced():
    c = cost.DPCluster(7e9)
    strong = cost.strong_scaling(c, LECTURE_GPUS, 2048, 4096)
    assert [r.step.tokens_per_gpu / 4096 for r in strong] == [2048, 512, 128, 32, 8]
    assert all(r.global_batch_tokens == 2048 * 4096 for r in strong)
    weak = cost.weak_scaling(c, LECTURE_GPUS, 32, 4096)
    assert [r.global_batch_tokens / 4096 for r in weak] == [32, 128, 512, 2048, 8192]


def test_simulate_overlap_limits():
    # no communication: the step is compute only
    assert cost.simulate_overlap(1.0, 2.0, [10, 10], [0.0, 0.0]) == (3.0, 0.0)
    # one bucket is ready only when backward ends: nothing hides
    step, exposed = cost.simulate_overlap(1.0, 2.0, [10], [0.5])
    assert exposed == pytest.approx(0.5) and step == pytest.approx(3.5)
    # many quick buckets: only the last one is exposed
    step, exposed = cost.simulate_overlap(1.0, 2.0, [1] * 10, [0.01] * 10)
    assert exposed == pytest.approx(0.01)
    # communication slower than backward: the link is the bottleneck
    step, exposed = cost.simulate_overlap(1.0, 1.0, [1] * 4, [1.0] * 4)
    assert step == pytest.approx(1.0 + 0.25 + 4.0)


def test_overlap_never_slower_and_bucket_size_trades_latency_for_exposure():
    c = cost.DPCluster(1e9, overlap=True)
    n = cost.DPCluster(1e9, overlap=False)
    for p in (2, 8, 64, 512):
        assert cost.dp_step(c, p, 4096).step_s <= cost.dp_step(n, p, 4096).step_s
    # tiny buckets pay α per message; one giant bucket exposes all of the all-reduce
    tiny = cost.dp_step(cost.DPCluster(1e9, bucket_bytes=2e4), 64, 4096 * 8)
    mid = cost.dp_step(cost.DPCluster(1e9), 64, 4096 * 8)
    one = cost.dp_step(cost.DPCluster(1e9, bucket_bytes=1e12), 64, 4096 * 8)
    assert mid.step_s < tiny.step_s and mid.step_s < one.step_s
    assert one.exposed_comm_s == pytest.approx(one.comm_s)


def test_strong_scaling_stops_where_communication_dominates():
    rows = cost.strong_scaling(cost.DPCluster(7e9), [1, 8, 64, 256, 1024, 2048, 4096], 2048, 4096)
    eff = [r.efficiency for r in rows]
    assert eff[0] == 1.0 and rows[0].step.comm_s == 0
    assert eff[3] > 0.95  # near-linear to 256 GPUs (Li et al. 2020 report this once tuned)
    assert eff[4] < 0.5 and eff[5] < eff[4]  # compute/GPU shrinks, the all-reduce does not
    assert not rows[-1].feasible and math.isnan(rows[-1].speedup)  # < 1 sequence per GPU


def test_weak_scaling_and_the_critical_batch():
    c = cost.DPCluster(7e9)
    gpus = [1, 4, 16, 64, 256, 1024]
    no_bc = cost.weak_scaling(c, gpus, 32, 4096)
    assert all(r.time_to_target_speedup == r.speedup for r in no_bc)
    assert all(r.efficiency > 0.95 for r in no_bc)  # throughput scales
    bc = cost.kaplan_critical_batch_tokens(2.0)
    rows = cost.weak_scaling(c, gpus, 32, 4096, critical_batch_tokens=bc)
    ttt = [r.time_to_target_speedup for r in rows]
    assert ttt[0] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(ttt, ttt[1:]))
    # bounded: even infinite GPUs cannot beat S(B_1)/S_min = 1 + B_crit/B_1
    assert ttt[-1] < 1 + bc / (32 * 4096)
    assert ttt[-1] < 0.1 * rows[-1].speedup


def test_kaplan_critical_batch():
    # Kaplan et al. 2020, Sec. 5.1: B_crit = 2e8 / L^(1/0.21) tokens
    assert cost.kaplan_critical_batch_tokens(1.0) == pytest.approx(2e8)
    assert cost.kaplan_critical_batch_tokens(2.0) == pytest.approx(2e8 / 2 ** (1 / 0.21))
    assert cost.steps_factor(1e6, 1e6) == 2.0


def test_7b_gradient_all_reduce_predictions():
    nvs = cost.gradient_all_reduce_time_s(7e9, 8, hardware.NVSWITCH)
    ib = cost.gradient_all_reduce_time_s(7e9, 64, hardware.INFINIBAND)
    assert nvs == pytest.approx(2 * 7 / 8 * 14e9 / 900e9, rel=0.01)  # ≈ 27 ms
    assert ib == pytest.approx(2 * 63 / 64 * 14e9 / 50e9, rel=0.01)  # ≈ 0.55 s
    assert ib / nvs > 15
    c = cost.DPCluster(7e9)
    assert c.link_for(8) is hardware.NVSWITCH and c.link_for(9) is hardware.INFINIBAND


def test_bad_input():
    with pytest.raises(ValueError, match="mfu"):
        cost.DPCluster(7e9, mfu=1.5)
    with pytest.raises(ValueError, match="unknown accelerator"):
        cost.DPCluster(7e9, accelerator="Z9000")
    with pytest.raises(ValueError, match="n_params"):
        cost.DPCluster(-1)
    with pytest.raises(ValueError, match="algorithm"):
        cost.DPCluster(7e9, algorithm="mesh")
    with pytest.raises(TypeError, match="Link"):
        cost.DPCluster(7e9, inter_link=50e9)
    with pytest.raises(ValueError, match="world_size"):
        cost.dp_step(cost.DPCluster(7e9), 0, 10)
    with pytest.raises(ValueError, match="tokens_per_gpu"):
        cost.compute_time_s(cost.DPCluster(7e9), 0)
    with pytest.raises(ValueError, match="same length"):
        cost.simulate_overlap(1, 1, [1, 2], [0.1])


def test_explorer_widget_reports_dp_step_numbers():
    from labutils.widgets import data_parallel as W

    panel = W.data_parallel_explorer()
    html = panel.children[-1]
    assert "scaling efficiency" in html.value
    before = html.value
    gpus = next(c for c in panel.children if getattr(c, "description", "") == "GPUs")
    gpus.value = 1024
    assert html.value != before and "1024 GPU(s)" in html.value
    c = W.cluster_from(7, "A100-80GB", 0.4, 900, 50, 10, 25, "ring", True)
    step = cost.dp_step(c, 1024, 8 * 4096)
    assert f"{step.comm_s * 1e3:,.1f} ms" in html.value


# ----------------------------------------------------------------------------------------------
# Bad input, swept over every public cost-model function: an error naming the argument
# ----------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_POS_REAL = [0, 0.0, -1, NAN, INF, -INF, True, "1", None]
BAD_NON_NEG_REAL = [-1, -1e-9, NAN, INF, -INF, True, "1", None]
_CL = cost.DPCluster(7e9)

DP_BAD_CASES = [
    (lambda x: cost.DPCluster(x), "n_params", BAD_POS_REAL),
    (lambda x: cost.DPCluster(7e9, mfu=x), "mfu", [*BAD_POS_REAL, 1.5]),
    (lambda x: cost.DPCluster(7e9, gpus_per_node=x), "gpus_per_node", BAD_POS_INT),
    (lambda x: cost.DPCluster(7e9, bucket_bytes=x), "bucket_bytes", BAD_POS_REAL),
    (lambda x: cost.DPCluster(7e9, grad_bytes_per_param=x), "grad_bytes_per_param", BAD_POS_REAL),
    (lambda x: cost.DPCluster(7e9, overlap=x), "overlap", [0, 1, "yes", None]),
    (lambda x: cost.compute_time_s(_CL, x), "tokens_per_gpu", BAD_POS_REAL),
    (lambda x: cost.compute_time_s(x, 1e3), "cluster", [None, 7e9]),
    (lambda x: cost.bucket_sizes_bytes(x, 25e6), "total_bytes", BAD_NON_NEG_REAL),
    (lambda x: cost.bucket_sizes_bytes(1e9, x), "bucket_bytes", BAD_POS_REAL),
    (lambda x: cost.simulate_overlap(x, 2.0, [1.0], [0.1]), "forward_s", BAD_NON_NEG_REAL),
    (lambda x: cost.simulate_overlap(1.0, x, [1.0], [0.1]), "backward_s", BAD_NON_NEG_REAL),
    (lambda x: cost.simulate_overlap(1.0, 2.0, x, [0.1]), "bucket_bytes",
     [None, 3, [-1.0], [NAN], [INF], [True], ["1"]]),
    (lambda x: cost.simulate_overlap(1.0, 2.0, [1.0], x), "bucket_comm_s",
     [None, 3, [-1.0], [NAN], [INF], [True], ["1"]]),
    (lambda x: cost.dp_step(x, 8, 1e3), "cluster", [None, 7e9]),
    (lambda x: cost.dp_step(_CL, x, 1e3), "world_size", BAD_POS_INT),
    (lambda x: cost.dp_step(_CL, 8, x), "tokens_per_gpu", BAD_POS_REAL),
    (lambda x: cost.gradient_all_reduce_time_s(x, 8, hardware.NVSWITCH), "n_params", BAD_POS_REAL),
    (lambda x: cost.gradient_all_reduce_time_s(7e9, x, hardware.NVSWITCH), "world_size", BAD_POS_INT),
    (lambda x: cost.gradient_all_reduce_time_s(7e9, 8, x), "link", [None, "nvswitch"]),
    (lambda x: cost.gradient_all_reduce_time_s(7e9, 8, hardware.NVSWITCH, x), "bytes_per_param", BAD_POS_REAL),
    (lambda x: cost.kaplan_critical_batch_tokens(x), "loss_nats", BAD_POS_REAL),
    (lambda x: cost.steps_factor(x, 1e6), "global_batch_tokens", BAD_POS_REAL),
    (lambda x: cost.steps_factor(1e6, x), "critical_batch_tokens", BAD_POS_REAL),
    (lambda x: cost.strong_scaling(_CL, x, 64, 2048), "world_size", [None, 8, [0], [True], [2.5]]),
    (lambda x: cost.strong_scaling(_CL, [1, 2], x, 2048), "global_batch_seqs", BAD_POS_INT),
    (lambda x: cost.strong_scaling(_CL, [1, 2], 64, x), "seq_len", BAD_POS_INT),
    (lambda x: cost.weak_scaling(_CL, x, 8, 2048), "world_size", [None, 8, [0], [True], [2.5]]),
    (lambda x: cost.weak_scaling(_CL, [1, 2], x, 2048), "per_gpu_batch_seqs", BAD_POS_INT),
    (lambda x: cost.weak_scaling(_CL, [1, 2], 8, x), "seq_len", BAD_POS_INT),
    (lambda x: cost.weak_scaling(_CL, [1, 2], 8, 2048, x), "critical_batch_tokens", BAD_POS_REAL[:-1]),
]


@pytest.mark.parametrize("call, name, bad_values", DP_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(DP_BAD_CASES)])
def test_every_cost_function_refuses_bad_input(call, name, bad_values):
    """Negative, zero, NaN, inf, bool and wrong types: ValueError or TypeError naming the
    argument (an MFU of True, 2.5 sequences and NaN bucket times used to give numbers)."""
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=name):
            call(bad)
