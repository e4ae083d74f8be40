"""The references of the assignments' variant parts (exercises/tools/variants.py), checked
against hand-worked values and formulas or simulations written independently here or in
labutils. The hidden tests grade students against these references, so they must be right."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labutils.flops import flops_per_token
from labutils.memory import model_state_bytes
from labutils.model import TransformerConfig
from labutils.mup import LAYER_KINDS, OptimizerHyperparams, abc_shift, layer_hyperparams, mup
from labutils.parallel.alpha_beta import alpha_beta_time
from labutils.parallel.pipeline.cost import pipeline_step_time_s
from labutils.parallel.pipeline.schedule import make_schedule, simulate
from labutils.quantization import absmax_quantize
from labutils.scaling import HOFFMANN_2022
from labutils.schedules import cosine
from labutils.throughput import amdahl_speedup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exercises" / "tools"))
import variants  # noqa: E402


def test_llama_flops_by_hand_and_against_the_swiglu_counter():
    # Llama-2-7B's shape at 4096 tokens, by hand: per layer 4·4096² + 3·4096·11008 = 202,375,168
    # matmul weights; × 32 layers + the 32,000 × 4096 head = 6,607,077,376; × 6, plus 12·L·d·T.
    assert variants.llama_train_flops_per_token(32000, 4096, 4096, 32, 32, 32, 11008) == \
        6 * 6_607_077_376 + 12 * 32 * 4096 * 4096 == 46_084_915_200
    # Without GQA (n_kv = n_heads) it is labutils' count of an untied SwiGLU model.
    rng = random.Random(0)
    for _ in range(20):
        heads = rng.choice([1, 2, 4, 8])
        d, L, V, T, f = heads * 16 * rng.randint(1, 8), rng.randint(1, 12), rng.randint(2, 5000), \
            rng.randint(1, 2048), rng.randint(1, 1000)
        cfg = TransformerConfig(V, T, d, L, heads, d_ff=f, mlp="swiglu", tied_embeddings=False)
        assert variants.llama_train_flops_per_token(V, T, d, L, heads, heads, f) == \
            pytest.approx(flops_per_token(cfg, training=True, attention=True), rel=1e-12)
    # GQA: 8 of 64 heads for K and V saves 6·L·2·d·(d − d/8) FLOPs per token.
    full = variants.llama_train_flops_per_token(32000, 4096, 8192, 80, 64, 64, 28672)
    gqa = variants.llama_train_flops_per_token(32000, 4096, 8192, 80, 64, 8, 28672)
    assert full - gqa == 6 * 80 * 2 * 8192 * (8192 - 1024)


def test_llama_flops_with_a_sliding_window():
    # Mistral 7B (Jiang et al. 2023, Table 1) at 8192 tokens, window 4096, by hand: matmul weights
    # 32·(2·4096² + 2·4096·1024 + 3·4096·14336) + 32000·4096 = 7,110,393,856; × 6 + 12·L·d·W.
    mistral = variants.llama_train_flops_per_token(32000, 8192, 4096, 32, 32, 8, 14336, 4096)
    assert mistral == 6 * 7_110_393_856 + 12 * 32 * 4096 * 4096 == 49_104_814_080
    # a window at least as long as the sequence is full attention (labutils' GQA count)
    cfg = TransformerConfig(32000, 8192, 4096, 32, 32, n_kv_heads=8, d_ff=14336, mlp="swiglu",
                            tied_embeddings=False)
    for window in (8192, 10_000, None):
        assert variants.llama_train_flops_per_token(32000, 8192, 4096, 32, 32, 8, 14336, window) \
            == pytest.approx(flops_per_token(cfg, training=True), rel=1e-12)


def test_cheapest_for_loss_reaches_the_target_and_is_the_compute_optimum():
    law = HOFFMANN_2022
    for target in (1.8, 2.0, 2.5, 3.5):
        n, d = variants.cheapest_for_loss(target, law.E, law.A, law.B, law.alpha, law.beta)
        assert law.loss(n, d) == pytest.approx(target, rel=1e-12)
        n_opt, d_opt = law.compute_optimal(6 * n * d)  # duality with chapter 2's closed form
        assert (n_opt, d_opt) == (pytest.approx(n, rel=1e-9), pytest.approx(d, rel=1e-9))
        # no point of a grid along the curve of equal loss is cheaper
        for f in np.geomspace(0.5, 2.0, 41):
            rest = target - law.E - law.A / (n * f) ** law.alpha
            if rest > 0:
                assert 6 * n * f * (law.B / rest) ** (1 / law.beta) >= 6 * n * d * (1 - 1e-12)
    with pytest.raises(ValueError, match="target_loss"):
        variants.cheapest_for_loss(law.E, law.E, law.A, law.B, law.alpha, law.beta)


def test_serial_fraction_inverts_amdahl():
    assert variants.serial_fraction_from_speedup(2, 3) == pytest.approx(0.25)  # 1/2 = s + (1-s)/3
    rng = random.Random(1)
    for _ in range(50):
        s, n = rng.random(), rng.randint(2, 10_000)
        assert variants.serial_fraction_from_speedup(amdahl_speedup(s, n), n) == pytest.approx(s, abs=1e-9)


def test_zero_bytes_with_optimizer():
    # Adam is labutils' mixed-precision recipe; ZeRO Fig. 1 (7.5B on 64 devices): 120 / 31.4 / 16.6 / 1.9 GB.
    gb = [variants.zero_bytes_with_optimizer(7_500_000_000, s, 64, "adam") / 1e9 for s in range(4)]
    assert gb == [pytest.approx(x, abs=0.05) for x in (120.0, 31.4, 16.6, 1.9)]
    rng = random.Random(2)
    for _ in range(50):
        n, s, dp = rng.randint(1, 10**12), rng.randint(0, 3), rng.randint(1, 1024)
        assert variants.zero_bytes_with_optimizer(n, s, dp, "adam") == \
            model_state_bytes(n, recipe="mixed_adam", zero_stage=s, dp=dp)["total"]
    # by hand: SGD-momentum, 1000 params on 8 ranks: 2+2+8 = 12 B/param unsharded; stage 3
    # keeps ceil(1000/8) = 125 of each: 125·12 = 1500 bytes; stage 1: 2000 + 2000 + 8·125.
    assert variants.zero_bytes_with_optimizer(1000, 0, 8, "sgd_momentum") == 12_000
    assert variants.zero_bytes_with_optimizer(1000, 3, 8, "sgd_momentum") == 1500
    assert variants.zero_bytes_with_optimizer(1000, 1, 8, "sgd") == 4000 + 4 * 125


def test_two_level_allreduce_reduces_to_a_ring_at_either_level():
    n = 3e9
    ring_nodes = alpha_beta_time(n, 16, 1e-5, 1 / 50e9)
    assert variants.hierarchical_allreduce_time_s(n, 1, 16, 1e-6, 1 / 400e9, 1e-5, 1 / 50e9) == \
        pytest.approx(ring_nodes, rel=1e-12)
    ring_gpus = alpha_beta_time(n, 8, 1e-6, 1 / 400e9)
    assert variants.hierarchical_allreduce_time_s(n, 8, 1, 1e-6, 1 / 400e9, 1e-5, 1 / 50e9) == \
        pytest.approx(ring_gpus, rel=1e-12)
    # by hand, g = 4, N = 2, α = 0: intra 2·3/4·n·β_i, inter 2·1/2·(n/4)·β_e
    assert variants.hierarchical_allreduce_time_s(8.0, 4, 2, 0.0, 1.0, 0.0, 10.0) == 12.0 + 20.0


def test_tp_swiglu_partials_sum_to_the_dense_mlp():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 8))
    Wg, Wu, Wd = rng.standard_normal((8, 12)), rng.standard_normal((8, 12)), rng.standard_normal((12, 8))
    dense = torch.nn.functional.silu(torch.tensor(X @ Wg)).numpy() * (X @ Wu) @ Wd
    assert np.allclose(variants.swiglu_mlp(X, Wg, Wu, Wd), dense)
    for t in (1, 2, 3, 4, 6):
        parts = variants.tp_swiglu_partials(X, Wg, Wu, Wd, t)
        assert len(parts) == t and np.allclose(sum(parts), dense)
    k = 12 // 3
    assert np.allclose(variants.tp_swiglu_partials(X, Wg, Wu, Wd, 3)[1],
                       variants.swiglu_mlp(X, Wg[:, k:2 * k], Wu[:, k:2 * k], Wd[k:2 * k]))


def test_pipeline_simulation_matches_labutils_and_the_afab_closed_form():
    for name in ("afab", "1f1b"):
        for p in (1, 2, 3, 4, 8):
            for m in (1, 2, p, 2 * p + 1):
                ours = variants.simulate_step_time_s(name, [1.0] * p, [2.0] * p, m)
                assert ours == pytest.approx(simulate(make_schedule(name, p, m), 1.0, 2.0).makespan)
                assert ours == pytest.approx(pipeline_step_time_s(p, m, 1.0, 2.0))
    # the hand-worked two-stage 1F1B example of the assignment
    assert variants.simulate_step_time_s("1f1b", [1.0, 2.0], [2.0, 4.0], 2) == 15.0
    rng = random.Random(4)
    for _ in range(30):
        p, m = rng.randint(1, 6), rng.randint(1, 10)
        tf = [rng.uniform(0.5, 3) for _ in range(p)]
        tb = [rng.uniform(1, 6) for _ in range(p)]
        closed = sum(tf) + (m - 1) * max(tf) + sum(tb) + (m - 1) * max(tb)
        assert variants.simulate_step_time_s("afab", tf, tb, m) == pytest.approx(closed)
        # 1F1B never beats the busiest stage's own compute
        assert variants.simulate_step_time_s("1f1b", tf, tb, m) >= m * max(a + b for a, b in zip(tf, tb)) - 1e-9


def test_striped_work():
    assert variants.striped_work(8, 2) == [16, 20]  # 1+3+5+7, 2+4+6+8
    for p in (1, 2, 3, 8):
        for c in (1, 4, 9):
            s = p * c
            work = variants.striped_work(s, p)
            assert sum(work) == s * (s + 1) // 2
            assert work == [p * c * (c - 1) // 2 + c * (r + 1) for r in range(p)]


def test_blockwise_int8():
    q, s = variants.blockwise_absmax_int8(torch.tensor([[-2.0, 0.5], [1.0, 0.25]]), 2)
    assert q.tolist() == [[-127, 32], [127, 32]] and s.tolist() == pytest.approx([2 / 127, 1 / 127])
    q, s = variants.blockwise_absmax_int8(torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]), 2)
    assert q.tolist() == [127, 0, 0, 0, 0] and s.tolist() == pytest.approx([3 / 127, 1.0, 1.0])
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(5))
    q, s = variants.blockwise_absmax_int8(x, 16)  # blocks = rows: labutils' per-row absmax
    ref = absmax_quantize(x, dim=1)
    assert torch.equal(q, ref.q) and torch.allclose(s, ref.scale.reshape(-1).float())
    q, s = variants.blockwise_absmax_int8(x, 1000)  # one block: the per-tensor scale
    ref = absmax_quantize(x)
    assert torch.equal(q, ref.q) and float(s[0]) == pytest.approx(float(ref.scale))


def test_mup_multiplier_form_is_the_table_after_an_abc_shift():
    std, mult, lr = variants.mup_layer_multiplier_form("hidden", 4.0, 12, 0.02, 1e-2)
    assert (std, mult, lr) == (pytest.approx(0.02), pytest.approx(0.5), pytest.approx(5e-3))
    for base, width in ((64, 256), (128, 1000), (100, 133)):
        for L in (1, 12, 48):
            param = mup(base, 16, init_std=0.05, output_mult=4.0, zero_init=False)
            opt = OptimizerHyperparams(lr=3e-3, batch_ratio=2.0)
            for kind in LAYER_KINDS:
                row = layer_hyperparams(kind, param, width, L, opt)
                kept = layer_hyperparams(kind, param, base, L, opt).init_std  # the proxy's std
                want_mult, want_std, want_lr = abc_shift(row.init_std / kept, mult=row.multiplier,
                                                         init_std=row.init_std, lr=row.lr)
                got = variants.mup_layer_multiplier_form(kind, width / base, L, 0.05, 3e-3, 4.0, 2.0)
                assert got == (pytest.approx(want_std), pytest.approx(want_mult), pytest.approx(want_lr))
                assert got[0] == pytest.approx(kept), "the init std stays the proxy's"


def test_wsd_cosine():
    assert variants.wsd_cosine(0, 100, 1.0, 10, 20) == 0.0
    assert variants.wsd_cosine(5, 100, 1.0, 10, 20) == 0.5
    assert variants.wsd_cosine(50, 100, 1.0, 10, 20) == 1.0
    assert variants.wsd_cosine(89, 100, 1.0, 10, 20) == pytest.approx(0.5)  # (1 + cos(π/2))/2
    assert variants.wsd_cosine(99, 100, 1.0, 10, 20, 0.1) == pytest.approx(0.1)
    # no warm-up and a cooldown over the whole run: labutils' cosine, one step ahead
    for step in range(99):
        assert variants.wsd_cosine(step, 100, 3e-3, 0, 100, 0.1) == \
            pytest.approx(cosine(step + 1, 100, peak_lr=3e-3, min_lr_ratio=0.1), rel=1e-12)


def test_valid_layouts_cp():
    assert variants.valid_layouts_cp(4, 4, 2, 2, 8, 4) == [
        (1, 1, 1, 4), (1, 1, 2, 2), (1, 2, 1, 2), (1, 2, 2, 1), (2, 1, 1, 2), (2, 1, 2, 1),
        (2, 2, 1, 1), (4, 1, 1, 1)]
    for args in [(64, 8, 32, 32, 8192, 1024), (48, 6, 36, 24, 6144, 96), (24, 8, 10, 12, 12, 24)]:
        n, g, L, heads, s, batch = args
        got = variants.valid_layouts_cp(*args)
        want = sorted((n // (tp * pp * cp), tp, pp, cp)
                      for tp in range(1, g + 1) for cp in range(1, g + 1) for pp in range(1, L + 1)
                      if g % (tp * cp) == 0 and heads % tp == 0 and L % pp == 0
                      and n % (tp * pp * cp) == 0 and (cp == 1 or s % (2 * cp) == 0)
                      and batch % (n // (tp * pp * cp)) == 0)
        assert got == want
