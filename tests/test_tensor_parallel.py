"""Tests for chapter 6: tensor and sequence parallelism on real gloo ranks, and their cost model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from labutils import hardware
from labutils.hardware import INFINIBAND, NVSWITCH
from labutils.activations import activation_bytes_per_layer
from labutils.flops import count_torch_flops
from labutils.model import tiny_config
from labutils.nn.gpt import Block
from labutils.parallel.tensor import cost, layers, workers
from labutils.parallel.collectives import ring_all_reduce_bytes_per_rank
from labutils.parallel.launch import launch

TOL = 1e-5  # fp32: parallel == single process within 1e-5
CFGS = {"gpt2-like": tiny_config(),  # the default config: LayerNorm with bias, GELU, learned pos.
        "llama-like": tiny_config(mlp="swiglu", d_ff=64, bias=False, norm="rmsnorm",
                                  positional="rope")}


def _run(case: workers.TPCase, world: int, sp: bool) -> list[dict]:
    return launch(workers.tp_worker, world, case, sp, timeout_s=60)


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("sp", [False, True], ids=["tp", "tp+sp"])
@pytest.mark.parametrize("part", workers.PARTS)
def test_tp_equals_single_process(part, sp, world):
    case = workers.TPCase(CFGS["gpt2-like"], part)
    out = _run(case, world, sp)
    err = workers.max_errors(case, out, sp)
    assert max(err.values()) < TOL, err
    # every rank holds a different shard (no rank silently holds the full weights)
    if part in ("column", "mlp", "block"):
        name = "weight" if part == "column" else ("mlp.fc_in.weight" if part == "block" else "fc_in.weight")
        assert not torch.equal(out[0]["grads"][name], out[1]["grads"][name])


@pytest.mark.parametrize("sp", [False, True], ids=["tp", "tp+sp"])
def test_tp_block_llama_config(sp):
    case = workers.TPCase(CFGS["llama-like"], "block")
    err = workers.max_errors(case, _run(case, 2, sp), sp)
    assert max(err.values()) < TOL, err


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("sp", [False, True], ids=["tp", "tp+sp"])
def test_block_communication_matches_formula(sp, world):
    cfg = CFGS["gpt2-like"]
    case = workers.TPCase(cfg, "block", batch=2)
    out = _run(case, world, sp)
    bsh = case.batch * cfg.seq_len * cfg.d_model
    expected = cost.tp_collectives_per_layer(sp)
    for r in out:
        log = r["comm"]
        for direction, kinds in expected.items():
            for kind, n in kinds.items():
                assert log.count(kind, direction) == n, (kind, direction, r["calls"])
        assert len(log.calls) == sum(sum(k.values()) for k in expected.values())
        assert all(n == bsh for _, _, n in log.calls)  # every collective moves a b·s·h tensor
        # bytes really sent by the ring collectives (fp32) == the formula == 4 ring all-reduces
        formula = cost.tp_comm_bytes_per_layer(cfg.seq_len, case.batch, cfg.d_model, world,
                                            bytes_per_element=4, sequence_parallel=sp)
        assert r["sent_bytes"] == formula == 4 * ring_all_reduce_bytes_per_rank(bsh * 4, world)


@pytest.mark.parametrize("name", sorted(CFGS))
def test_param_count_per_rank_matches_formula(name):
    cfg = CFGS[name]
    out = _run(workers.TPCase(cfg, "block"), 2, False)
    assert [r["param_count"] for r in out] == [cost.tp_block_param_count(cfg, 2)] * 2
    full = sum(p.numel() for p in Block(cfg).parameters())
    assert cost.tp_block_param_count(cfg, 1) == full
    assert cost.tp_block_param_count(cfg, 2) < full


def test_dtensor_parallelize_module_agrees():
    """PyTorch's own engine (DTensor ColwiseParallel/RowwiseParallel) on a CPU mesh.

    Skipped only where this torch lacks the module; it runs on
    CPU with gloo here (DESIGN.md, pitfalls), so any error in the launch is a real failure.
    """
    pytest.importorskip("torch.distributed.tensor.parallel",
                        reason="this torch has no torch.distributed.tensor.parallel")
    case = workers.TPCase(CFGS["gpt2-like"], "mlp")
    dt = launch(workers.dtensor_mlp_worker, 2, case, timeout_s=60)
    ours = _run(case, 2, False)
    for r_dt, r_ours in zip(dt, ours):
        assert (r_dt["out"] - r_ours["out"]).abs().max().item() < TOL
        assert (r_dt["fc_in.weight"] - r_ours["grads"]["fc_in.weight"]).abs().max().item() < TOL
        assert (r_dt["fc_out.weight"] - r_ours["grads"]["fc_out.weight"]).abs().max().item() < TOL


def test_shard_rows_rejects_uneven_split():
    with pytest.raises(ValueError, match="divisible"):
        layers.shard_rows(torch.zeros(5, 2), 0, 2)
    with pytest.raises(ValueError, match="part"):
        workers.TPCase(tiny_config(), "embedding")


# ----------------------------------------------------------------------------------------------
# Cost model
# ----------------------------------------------------------------------------------------------


def test_comm_bytes_formula():
    s, b, h = 2048, 1, 12288
    n = s * b * h * 2
    assert cost.tp_comm_bytes_per_layer(s, b, h, 1) == 0
    assert cost.tp_comm_bytes_per_layer(s, b, h, 8) == pytest.approx(4 * 2 * 7 / 8 * n)
    assert (cost.tp_comm_bytes_per_layer(s, b, h, 8, sequence_parallel=True)
            == cost.tp_comm_bytes_per_layer(s, b, h, 8))
    with pytest.raises(ValueError, match="tp"):
        cost.tp_comm_bytes_per_layer(s, b, h, 0)


def test_layer_flops_match_torch_flop_counter():
    cfg = tiny_config(seq_len=16, d_model=32, n_heads=4)
    block, x = Block(cfg), torch.randn(2, 16, 32, requires_grad=True)
    counted = count_torch_flops(lambda: block(x).sum().backward())["total"]
    assert counted == cost.layer_train_flops(16, 2, 32)


def test_tp_stays_inside_a_node():
    peak = hardware.get("H100-SXM").peak_flops("bf16")
    curve = cost.tp_efficiency_curve(2048, 1, 12288, [1, 2, 4, 8, 16, 32, 64], peak_flops=peak)
    eff = [c.efficiency for c in curve]
    assert eff[0] == 1.0 and all(a >= b for a, b in zip(eff, eff[1:]))
    assert eff[3] > 0.8 and eff[4] < 0.5  # the cliff between 8 (NVSwitch) and 16 (InfiniBand)
    assert curve[3].link == NVSWITCH.name and curve[4].link == INFINIBAND.name
    one = cost.tp_layer_cost(2048, 1, 12288, 16, peak_flops=peak, link=NVSWITCH)
    assert one.efficiency > curve[4].efficiency  # same degree, faster link: better
    with pytest.raises(ValueError, match="mfu"):
        cost.tp_layer_cost(2048, 1, 12288, 8, peak_flops=peak, mfu=0)


def test_activation_memory_tp_and_sp():
    """Korthikanti et al. 2022 Eq. 2 and 4 through labutils.activations: SP divides everything
    by t, TP alone leaves 10·sbh per layer unsplit."""
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    none = activation_bytes_per_layer(s, b, h, a)
    tp = activation_bytes_per_layer(s, b, h, a, tp=t)
    sp = activation_bytes_per_layer(s, b, h, a, tp=t, sequence_parallel=True)
    assert sp * t == none
    assert tp - sp == 10 * s * b * h - 10 * s * b * h // t


def test_weight_bytes_and_comm_time():
    cfg = tiny_config(bias=False, norm="rmsnorm")
    # the approximation 12h²/t·e is the exact count minus the two norms' h + h
    assert cost.tp_weight_bytes_per_layer(32, 2, bytes_per_element=1) == cost.tp_block_param_count(cfg, 2) - 2 * 32
    n = 2048 * 1 * 12288 * 2
    expected = 4 * (2 * 7 * NVSWITCH.latency_s + 2 * 7 / 8 * n / NVSWITCH.bandwidth_bytes_per_s)
    assert cost.tp_layer_comm_time_s(2048, 1, 12288, 8, NVSWITCH) == pytest.approx(expected)
    assert cost.tp_layer_comm_time_s(2048, 1, 12288, 1, NVSWITCH) == 0


def test_sp_plus_selective_recompute_saves_about_5x():
    """Korthikanti et al. 2022, abstract: SP + selective recomputation 'reduces activation memory
    by 5x' vs TP alone. GPT-3 175B's layer (h=12288, a=96, s=2048) at t=8 gives 5.4x."""
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    ratio = (activation_bytes_per_layer(s, b, h, a, tp=t)
             / activation_bytes_per_layer(s, b, h, a, tp=t, sequence_parallel=True, recompute="selective"))
    assert ratio == pytest.approx(5.4, abs=0.05)


# ----------------------------------------------------------------------------------------------
# Bad input, swept over every public cost-model function: an error naming the argument
# ----------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_POS_REAL = [0, 0.0, -1, NAN, INF, -INF, True, "1", None]
BAD_BOOL = [0, 1, "yes", None]
_PEAK = hardware.get("H100-SXM").peak_flops("bf16")

TP_BAD_CASES = [
    (lambda x: cost.tp_collectives_per_layer(x), "sequence_parallel", BAD_BOOL),
    (lambda x: cost.tp_comm_bytes_per_layer(x, 1, 64, 2), "seq_len", BAD_POS_INT),
    (lambda x: cost.tp_comm_bytes_per_layer(128, x, 64, 2), "micro_batch", BAD_POS_INT),
    (lambda x: cost.tp_comm_bytes_per_layer(128, 1, x, 2), "d_model", BAD_POS_INT),
    (lambda x: cost.tp_comm_bytes_per_layer(128, 1, 64, x), "tp", [*BAD_POS_INT, 3, 128]),
    (lambda x: cost.tp_comm_bytes_per_layer(128, 1, 64, 2, bytes_per_element=x), "bytes_per_element",
     BAD_POS_INT),
    (lambda x: cost.tp_comm_bytes_per_layer(128, 1, 64, 2, sequence_parallel=x), "sequence_parallel",
     BAD_BOOL),
    (lambda x: cost.tp_block_param_count(x, 2), "cfg", [None, 3, "gpt2"]),
    (lambda x: cost.tp_block_param_count(tiny_config(), x), "tp", [*BAD_POS_INT, 3]),
    (lambda x: cost.layer_train_flops(x, 1, 64), "seq_len", BAD_POS_INT),
    (lambda x: cost.layer_train_flops(128, 1, x), "d_model", BAD_POS_INT),
    (lambda x: cost.tp_weight_bytes_per_layer(x, 2), "d_model", BAD_POS_INT),
    (lambda x: cost.tp_weight_bytes_per_layer(64, x), "tp", [*BAD_POS_INT, 3]),
    (lambda x: cost.tp_layer_comm_time_s(128, 1, 64, x, NVSWITCH), "tp", [*BAD_POS_INT, 3]),
    (lambda x: cost.tp_layer_comm_time_s(128, 1, 64, 2, x), "link", [None, "nvlink", 900e9]),
    (lambda x: cost.link_for_tp(x), "tp", BAD_POS_INT),
    (lambda x: cost.link_for_tp(2, x), "gpus_per_node", BAD_POS_INT),
    (lambda x: cost.link_for_tp(2, 8, x), "intra", [None, "nvlink"]),
    (lambda x: cost.tp_layer_cost(128, 1, 64, x, peak_flops=_PEAK), "tp", [*BAD_POS_INT, 3]),
    (lambda x: cost.tp_layer_cost(128, 1, 64, 2, peak_flops=x), "peak_flops", BAD_POS_REAL),
    (lambda x: cost.tp_layer_cost(128, 1, 64, 2, peak_flops=_PEAK, mfu=x), "mfu",
     [*BAD_POS_REAL, 1.5]),
    (lambda x: cost.tp_layer_cost(128, 1, 64, 2, peak_flops=_PEAK, link=x), "link", ["nvlink", 3]),
    (lambda x: cost.tp_efficiency_curve(128, 1, 64, x, peak_flops=_PEAK), "tp",
     [None, 2, "12", [], [0], [True], [3]]),
]


@pytest.mark.parametrize("call, name, bad_values", TP_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(TP_BAD_CASES)])
def test_every_cost_function_refuses_bad_input(call, name, bad_values):
    """Negative, zero, NaN, inf, bool, wrong types and TP degrees that do not divide the width:
    ValueError or TypeError naming the argument (tp=3 with d_model=64 used to give bytes)."""
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=name):
            call(bad)


@given(d_model=st.integers(1, 4096), tp=st.integers(2, 64))
@settings(max_examples=60, deadline=None)
def test_tp_degree_must_divide_the_width(d_model, tp):
    """Property: every TP cost of a layer refuses a degree that does not split h evenly, and
    accepts one that does (the matrices are cut into t equal column/row blocks)."""
    if d_model % tp:
        for call in (lambda: cost.tp_comm_bytes_per_layer(16, 1, d_model, tp),
                     lambda: cost.tp_weight_bytes_per_layer(d_model, tp)):
            with pytest.raises(ValueError, match="divide"):
                call()
    else:
        assert cost.tp_weight_bytes_per_layer(d_model, tp) == 12 * d_model * d_model / tp * 2
