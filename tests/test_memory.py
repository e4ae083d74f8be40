"""Tests for labutils.memory and labutils.activations (Chapter 4, memory)."""

from __future__ import annotations

import pytest
import torch

from labutils import memory
from labutils import activations
from labutils.model import count_params, preset, tiny_config
from labutils.nn import GPT

PSI_75B = 7_500_000_000


# ---- bytes per parameter --------------------------------------------------------------------

def test_lecture_24gb_for_1b_fp32():
    # Lecture 003: 4 GB to store 1B fp32 parameters, 24 GB to train them (4 + 20 extra bytes).
    assert memory.model_state_bytes(10**9, recipe="fp32_adam")["params"] == 4 * 10**9
    assert memory.lecture_training_bytes(10**9) == 24 * 10**9
    assert memory.get_recipe("fp32_adam").total_bytes_per_param + memory.LECTURE_ACTIVATION_BYTES_PER_PARAM == 24


def test_mixed_adam_is_2_2_12():
    r = memory.get_recipe("mixed_adam")
    assert (r.param_bytes, r.grad_bytes, r.optimizer_bytes) == (2, 2, 12)
    assert memory.model_state_bytes(1000, recipe="mixed_adam")["total"] == 16_000
    assert memory.model_state_bytes(1000, recipe="sgd")["optimizer"] == 0


# ---- the ZeRO paper ---------------------------------------------------------------------------

@pytest.mark.parametrize("stage,gb", sorted(memory.ZERO_FIG1["total_gb"].items()))
def test_zero_figure1(stage, gb):
    got = memory.model_state_bytes(PSI_75B, recipe="mixed_adam", zero_stage=stage, dp=64)["total"]
    assert round(got / 1e9, 1) == gb


def test_zero_figure1_exact_terms():
    # 2Ψ + 2Ψ + KΨ/N_d = 30 GB + 1.40625 GB for P_os
    b = memory.model_state_bytes(PSI_75B, recipe="mixed_adam", zero_stage=1, dp=64)
    assert b == {"params": 15 * 10**9, "grads": 15 * 10**9, "optimizer": 1_406_250_000,
                 "total": 31_406_250_000}


def test_zero_table1():
    t = memory.ZERO_TABLE1
    for dp, row in t["rows"].items():
        for model, published in row.items():
            for stage, pub in zip((1, 2, 3), published):
                got = memory.model_state_bytes(t["n_params"][model], zero_stage=stage, dp=dp)["total"] / 1e9
                # The paper rounds small entries to about 3 digits and truncates large ones to GB.
                tol = 1.0 if pub >= 100 else 0.051
                assert abs(got - pub) <= tol, (model, dp, stage, got, pub)


def test_max_params_that_fit():
    mem = 32 * 2**30  # a 32 GB V100
    n = memory.max_params_that_fit(mem, zero_stage=3, dp=64)
    assert memory.model_state_bytes(n, zero_stage=3, dp=64)["total"] <= mem
    assert memory.model_state_bytes(n + 1, zero_stage=3, dp=64)["total"] > mem
    # ZeRO Sec. 1: stage 3 on 1024 devices fits a trillion parameters (16 TB / 1024: "16GB" in
    # Sec. 1, 15.6 GB in Table 1).
    assert memory.max_params_that_fit(mem, zero_stage=3, dp=1024) > 10**12


def test_padding_of_shards():
    assert memory.shard_numel(10, 4) == 3
    assert memory.model_state_bytes(10, recipe="fp32_adam", zero_stage=3, dp=4)["params"] == 12


# ---- communication ----------------------------------------------------------------------------

def test_comm_volume_units_of_psi():
    psi = 1_000_000
    assert [memory.zero_comm_volume(psi, s) / psi for s in range(4)] == [2, 2, 2, 3]
    assert memory.ddp_comm_volume(psi) == 2 * psi and memory.fsdp_comm_volume(psi) == 3 * psi
    assert memory.fsdp_comm_volume(psi) / memory.ddp_comm_volume(psi) == 1.5  # lecture 002: "by 1.5x"
    assert memory.ring_comm_bytes(2 * psi, 4, 2) == 2 * psi * 2 * 3 / 4
    assert memory.ring_comm_bytes(2 * psi, 1) == 0
    assert memory.three_d_comm_volume(psi, n_devices=8, tp=8) == 4 * psi


# ---- lecture 002's 3D formula -----------------------------------------------------------------

def test_three_d_memory():
    mp = 1000
    assert memory.three_d_memory_bytes(mp) == 6 * mp == memory.fsdp_memory_bytes(mp, 1)
    # M_p/(PP·TP) + 2M_p/DP + 2M_p/(PP·TP) + M_p with DP=4, TP=2, PP=2
    assert memory.three_d_memory_bytes(mp, dp=4, tp=2, pp=2) == pytest.approx(250 + 500 + 500 + 1000)
    assert memory.fsdp_memory_bytes(mp, 8) == 750


# ---- gradient accumulation --------------------------------------------------------------------

def test_grad_accumulation_steps():
    assert memory.grad_accumulation_steps(512, 4, 8) == 16
    plan = memory.accumulation_plan(8, dp=2)
    assert plan == [{"micro_batch": 1, "steps": 4}, {"micro_batch": 2, "steps": 2},
                    {"micro_batch": 4, "steps": 1}]
    with pytest.raises(ValueError, match="micro_batch"):
        memory.grad_accumulation_steps(10, 4, 1)


def test_accumulated_gradients_equal_full_batch():
    torch.manual_seed(0)
    cfg = tiny_config()
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (8, cfg.seq_len))
    tgt = torch.randint(0, cfg.vocab_size, (8, cfg.seq_len))
    full = activations.accumulated_gradients(model, idx, tgt, 8)
    acc = activations.accumulated_gradients(model, idx, tgt, 2)
    for a, b in zip(full, acc):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# ---- activations --------------------------------------------------------------------------------

CASES = [(2048, 1, 12288, 96, 8), (2048, 4, 4096, 32, 4), (1024, 2, 768, 12, 1), (512, 3, 256, 8, 2)]


@pytest.mark.parametrize("s,b,h,a,t", CASES)
def test_activation_formula_matches_korthikanti_table2(s, b, h, a, t):
    ref = activations.korthikanti_table2(s, b, h, a, t)
    f = lambda **kw: activations.activation_bytes_per_layer(s, b, h, a, **kw)  # noqa: E731
    assert f() == pytest.approx(activations.korthikanti_table2(s, b, h, a, 1)["no parallelism"])  # Eq. 1
    assert f(tp=t) == pytest.approx(ref["tensor parallel (baseline)"])  # Eq. 2
    assert f(tp=t, sequence_parallel=True) == pytest.approx(ref["tensor + sequence parallel"])  # Eq. 4
    assert f(tp=t, recompute="selective") == pytest.approx(ref["tensor parallel + selective recompute"])
    assert f(tp=t, sequence_parallel=True, recompute="selective") == pytest.approx(
        ref["tensor + sequence parallel + selective recompute"])
    assert f(recompute="full") == ref["full recompute"]


def test_activation_gpt3_example():
    # GPT-3 175B layer, s = 2048, b = 1, t = 8 with SP + selective: 34·sbh/t bytes.
    got = activations.activation_bytes_per_layer(2048, 1, 12288, 96, tp=8, sequence_parallel=True,
                                       recompute="selective")
    assert got == 34 * 2048 * 12288 // 8


@pytest.mark.parametrize("model", sorted(activations.KORTHIKANTI_SELECTIVE))
def test_korthikanti_selective_recompute_savings_and_overhead(model):
    # Korthikanti et al. 2022, Sec. 5: selective recomputation saves 70 % (GPT-3) / 65 % (MT-NLG)
    # of activation memory for 2.7 % / 1.6 % extra FLOPs (App. A, Eq. 7-8). The paper prints two
    # and one decimal digits of a percentage, so we allow half a unit of the last printed digit.
    c = activations.KORTHIKANTI_SELECTIVE[model]
    s, h, a = c["seq_len"], c["d_model"], c["n_heads"]
    kept = activations.activation_bytes_per_layer(s, 1, h, a, recompute="selective")
    saving = 1 - kept / activations.activation_bytes_per_layer(s, 1, h, a)
    assert abs(saving - c["memory_saving"]) <= 0.005
    shape = dict(seq_len=s, d_model=h, n_layers=c["n_layers"], vocab_size=c["vocab_size"])
    assert abs(activations.recompute_flops_overhead("selective", **shape) - c["flops_overhead"]) <= 0.0005
    # Sec. 6.2: full recomputation is "expected" to cost 33 % (one more forward of every layer).
    assert abs(activations.recompute_flops_overhead("full", **shape) - activations.KORTHIKANTI_FULL_EXPECTED_OVERHEAD) <= 0.005
    assert activations.recompute_flops_overhead("none", **shape) == 0.0


@pytest.mark.parametrize("recompute", activations.RECOMPUTE)
def test_gpt_forward_with_recompute_matches_model(recompute):
    torch.manual_seed(0)
    cfg = tiny_config()
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.seq_len))
    _, ref = model(idx, idx)
    ref.backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    _, loss = activations.gpt_forward(model, idx, idx, recompute)
    loss.backward()
    torch.testing.assert_close(loss, ref, rtol=0, atol=1e-6)
    for p, g in zip(model.parameters(), ref_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("recompute", activations.RECOMPUTE)
def test_measured_activations_equal_prediction(recompute):
    cfg = tiny_config(seq_len=16)
    measured = activations.measured_activation_bytes_per_layer(cfg, 3, recompute)
    assert measured == activations.reference_gpt_activation_bytes_per_layer(cfg, 3, recompute)


@pytest.mark.parametrize("recompute", activations.RECOMPUTE)
def test_gqa_reference_gpt_keeps_full_width_k_and_v(recompute):
    """repeat_interleave materialises the repeated K/V heads, so the naive GQA block holds what
    multi-head attention holds; the fused-kernel count is smaller by 2·e·sb·(h − h·kv/a)."""
    gqa, mha = tiny_config(seq_len=16, n_kv_heads=1), tiny_config(seq_len=16)
    measured = activations.measured_activation_bytes_per_layer(gqa, 3, recompute)
    assert measured == activations.reference_gpt_activation_bytes_per_layer(gqa, 3, recompute)
    assert measured == activations.reference_gpt_activation_bytes_per_layer(mha, 3, recompute)
    s, b, h, a = 16, 3, 32, 4
    fused = activations.activation_bytes_per_layer(s, b, h, a, n_kv_heads=1, bytes_per_element=4,
                                         dropout=False, recompute=recompute)
    full = activations.activation_bytes_per_layer(s, b, h, a, bytes_per_element=4, dropout=False,
                                        recompute=recompute)
    assert full - fused == (0 if recompute == "full" else 2 * 4 * s * b * (h - h // a))


@pytest.mark.parametrize("kv,tp,heads_per_rank", [(8, 1, 8), (8, 4, 2), (8, 8, 1), (2, 8, 1)])
def test_gqa_activation_k_and_v_per_tensor_parallel_rank(kv, tp, heads_per_rank):
    s, b, h, a = 64, 2, 1024, 16  # heads of 64
    got = activations.activation_bytes_per_layer(s, b, h, a, tp=tp, n_kv_heads=kv)
    mha = activations.activation_bytes_per_layer(s, b, h, a, tp=tp)
    assert mha - got == 2 * 2 * s * b * 64 * (a // tp - heads_per_rank)


def test_recompute_reduces_held_memory():
    cfg = tiny_config(seq_len=32, n_layers=2)
    held = {r: activations.measure_activations(cfg, 2, r).held_after_forward_bytes for r in activations.RECOMPUTE}
    assert held["none"] > held["selective"] > held["full"]


def test_live_tensor_tracker_counts_new_storage_only():
    x = torch.ones(100)
    with activations.LiveTensorTracker() as tr:
        y = x * 2  # 400 new bytes
        z = y.view(10, 10)  # a view: nothing new  # noqa: F841
        w = y + 1  # another 400
        del w
    assert tr.peak_bytes == 800 and tr.live_bytes == 400


# ---- the calculator's arithmetic ------------------------------------------------------------

def test_device_memory_breakdown_llama7b():
    cfg = preset("llama-7b")
    n = count_params(cfg)
    b = memory.device_memory_breakdown(n, n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
                                  seq_len=2048, micro_batch=1, zero_stage=3, dp=8, tp=1, pp=1,
                                  recompute="full")
    assert b["params"] + b["grads"] + b["optimizer"] == memory.model_state_bytes(n, zero_stage=3, dp=8)["total"]
    assert b["activations"] == cfg.n_layers * 2 * 2048 * cfg.d_model
    assert b["total"] == sum(b[k] for k in ("params", "grads", "optimizer", "activations"))


def test_memory_widget_builds():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labutils import hardware
    from labutils.widgets.memory import PARTS, fits, memory_calculator, memory_figure

    panel = memory_calculator()  # builds and renders its default setting without raising
    controls = {c.description: c for box in panel.children[0].children for c in box.children}
    assert controls["model"].value == "llama-7b" and controls["ZeRO stage"].value == 1
    # The figure draws labutils.memory's numbers: the default setting's stacked bars, in GB.
    cfg = preset("llama-7b")
    b = memory.device_memory_breakdown(count_params(cfg), n_layers=cfg.n_layers, d_model=cfg.d_model,
                                  n_heads=cfg.n_heads, seq_len=2048, micro_batch=1, zero_stage=1,
                                  dp=8, recompute="selective")
    fig = memory_figure(b, "A100-80GB")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([b[k] / 1e9 for k in PARTS])
    assert fig.axes[0].lines[0].get_ydata()[0] == pytest.approx(hardware.get("A100-80GB").memory_bytes / 1e9)
    plt.close(fig)
    assert fits({"total": 10}, "A100-80GB") and not fits({"total": 10**12}, "A100-80GB")


# ---- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(zero_stage=4), ValueError, "zero_stage"),
    (dict(zero_stage=-1), ValueError, "zero_stage"),
    (dict(zero_stage=1.0), TypeError, "zero_stage"),
    (dict(dp=0), ValueError, "dp"),
    (dict(dp=2.5), TypeError, "dp"),
    (dict(recipe="adamw"), ValueError, "recipe"),
])
def test_model_state_bytes_rejects_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        memory.model_state_bytes(1000, **kwargs)


def test_other_bad_input():
    with pytest.raises(ValueError, match="n_params"):
        memory.model_state_bytes(0)
    with pytest.raises(ValueError, match="zero_stage"):
        memory.zero_comm_volume(10, 5)
    with pytest.raises(TypeError, match="tp"):
        activations.activation_bytes_per_layer(128, 1, 64, 4, tp=1.5)
    with pytest.raises(ValueError, match="tp"):
        activations.activation_bytes_per_layer(128, 1, 64, 4, tp=3)
    with pytest.raises(ValueError, match="recompute"):
        activations.activation_bytes_per_layer(128, 1, 64, 4, recompute="some")
    with pytest.raises(ValueError, match="recompute"):
        activations.recompute_flops_overhead("partial", 128, 64, 2, 100)
    with pytest.raises(ValueError, match="n_layers"):
        activations.recompute_flops_overhead("full", 128, 64, 0, 100)
    with pytest.raises(ValueError, match="pp"):
        memory.three_d_memory_bytes(100, pp=0)
    with pytest.raises(ValueError, match="pp"):
        memory.device_memory_breakdown(10, n_layers=3, d_model=8, n_heads=2, seq_len=4, micro_batch=1, pp=2)
    assert memory.model_state_bytes(7.5e9)["total"] == 16 * PSI_75B  # integral floats are accepted


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_activation_memory_matches_cpu_trend():
    cfg = tiny_config(seq_len=64, d_model=64, n_heads=4)
    held = {r: activations.measure_activations(cfg, 4, r, device="cuda").held_after_forward_bytes for r in activations.RECOMPUTE}
    assert held["none"] > held["selective"] > held["full"] > 0


# ---- pipeline schedules: what the most loaded rank holds ----------------------------------------

def test_in_flight_micro_batches_by_hand():
    # 1F1B: rank r runs pp − r − 1 warm-up forwards, then 1F1B: pp − r in flight, at most m.
    assert [memory.in_flight_micro_batches(4, r) for r in range(4)] == [4, 3, 2, 1]
    assert memory.in_flight_micro_batches(4, 0, 2) == 2  # only 2 micro-batches in the step
    # Interleaved (Megatron-LM): 2(pp − r − 1) + (v − 1)·N + 1, capped by m·v forwards.
    assert memory.in_flight_micro_batches(4, 0, 8, virtual_stages=2) == 2 * 3 + 1 * 4 + 1
    assert memory.in_flight_micro_batches(4, 0, 2, virtual_stages=2) == 4
    assert memory.in_flight_micro_batches(4, 0, 8, virtual_stages=2, group_size=6) == 6 + 6 + 1


def test_peak_activation_layers():
    # Equal stages, 1F1B, enough micro-batches: L layers (Korthikanti Eq. 5).
    assert memory.peak_activation_layers((8,) * 4) == 32
    # Interleaved towards L·(1 + (pp − 1)/(pp·v)): 11 forwards of 4 layers = 44 = 32·(1 + 3/8).
    assert memory.peak_activation_layers((8,) * 4, 8, virtual_stages=2) == 44
    # A lighter first stage moves the peak to rank 1: max(4·7, 3·8) = 28.
    assert memory.peak_activation_layers((7, 8, 8, 7), 8) == 28


def test_device_memory_breakdown_follows_the_schedule():
    kw = dict(n_layers=32, d_model=4096, n_heads=32, seq_len=2048, micro_batch=1, tp=1, pp=4)
    per_layer = 34 * 2048 * 4096  # Korthikanti Eq. 1 without the score terms (selective), bytes
    full = memory.device_memory_breakdown(10**9, recompute="selective", **kw)
    assert full["activations"] == 32 * per_layer
    two = memory.device_memory_breakdown(10**9, recompute="selective", micro_batches=2, **kw)
    assert two["activations"] == 2 * 8 * per_layer  # 2 micro-batches of 8 layers
    inter = memory.device_memory_breakdown(10**9, recompute="selective", micro_batches=8,
                                      virtual_stages=2, **kw)
    assert inter["activations"] == 44 * per_layer
    with pytest.raises(ValueError, match="stage_layers"):
        memory.device_memory_breakdown(10**9, stage_layers=(8, 8, 8), **kw)


# ---- bad input, every public function ------------------------------------------------------------

BAD_NUMBERS = [(-1, ValueError), (0, ValueError), (float("nan"), TypeError),
               (float("inf"), TypeError), ("8", TypeError), (True, TypeError), (2.5, TypeError)]


@pytest.mark.parametrize("value,exc", BAD_NUMBERS)
@pytest.mark.parametrize("call", [
    lambda x: memory.in_flight_micro_batches(x, 0),
    lambda x: memory.in_flight_micro_batches(4, 0, x),
    lambda x: memory.in_flight_micro_batches(4, 0, 4, virtual_stages=x),
    lambda x: memory.in_flight_micro_batches(4, 0, 4, virtual_stages=2, group_size=x),
    lambda x: memory.peak_activation_layers((4, 4), x),
    lambda x: memory.device_memory_breakdown(10**6, n_layers=4, d_model=64, n_heads=4, seq_len=8,
                                        micro_batch=1, pp=2, micro_batches=x),
], ids=["pp", "micro_batches", "virtual_stages", "group_size", "peak_micro_batches",
        "breakdown_micro_batches"])
def test_memory_counts_refuse_bad_values(call, value, exc):
    with pytest.raises(exc, match="must be"):  # the validate helpers' wording, naming the argument
        call(value)


@pytest.mark.parametrize("value,exc", [("2", TypeError), (None, TypeError)])
def test_memory_reals_refuse_wrong_types_by_name(value, exc):
    # Before: a TypeError from math.isfinite that names no argument, or a ValueError.
    with pytest.raises(exc, match="volume_elements"):
        memory.ring_comm_bytes(value, 4)
    with pytest.raises(exc, match="optimizer_factor"):
        memory.three_d_memory_bytes(100, optimizer_factor=value)


def test_pipeline_rank_and_stage_layers_are_checked():
    with pytest.raises(ValueError, match="rank"):
        memory.in_flight_micro_batches(4, 4)
    with pytest.raises(TypeError, match="stage_layers"):
        memory.peak_activation_layers(())
    with pytest.raises(ValueError, match="stage_layers"):
        memory.peak_activation_layers((4, -1))
