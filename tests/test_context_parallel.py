"""Tests for labutils.attention (online softmax, tiled attention) and
labutils.parallel.context (ring attention on gloo ranks, zigzag, cost model), Chapter 8."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from labutils import attention
from labutils.activations import activation_bytes_per_layer
from labutils.hardware import INFINIBAND, NVSWITCH, get
from labutils.parallel.context import cost, ring, sharding, workers

TOL = 1e-5  # fp32: parallel / tiled == reference within 1e-5


def _qkv(shape=(2, 3, 48, 8), seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g).requires_grad_(grad) for _ in range(3)]


# ----------------------------------------------------------------------------------------------
# Single process
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 5, 37, 64])
def test_online_softmax_equals_softmax(block):
    x = torch.randn(4, 37, generator=torch.Generator().manual_seed(1)) * 30  # large: needs the max
    assert (attention.online_softmax(x, block) - torch.softmax(x, -1)).abs().max() < 1e-6
    m, l = attention.online_softmax_stats(x, block)
    assert torch.equal(m, x.amax(-1))
    assert torch.allclose(l, torch.exp(x - m[:, None]).sum(-1))


def test_merge_partials_is_exact_and_handles_empty_blocks():
    q, k, v = _qkv((2, 10, 4), seed=2)
    full = attention.block_attention(q, k, v)
    left = attention.block_attention(q, k[:, :3], v[:, :3])
    right = attention.block_attention(q, k[:, 3:], v[:, 3:])
    for a, b in ((left, right), (right, left)):  # order does not matter
        m, l, o = attention.merge_partials(*a, *b)
        assert torch.allclose(m, full[0]) and torch.allclose(l, full[1], rtol=1e-5)
        assert (o - full[2]).abs().max() < TOL
    empty = attention.empty_partial(q, 4)
    m, l, o = attention.merge_partials(*empty, *full)
    assert (o - full[2]).abs().max() == 0 and torch.equal(m, full[0])
    m, l, o = attention.merge_partials(*empty, *empty)
    assert torch.isinf(m).all() and (l == 0).all() and (o == 0).all()
    # a fully masked block is the empty partial result
    mask = torch.zeros(10, 10, dtype=torch.bool)
    m, l, o = attention.block_attention(q, k, v, mask)
    assert torch.isinf(m).all() and (l == 0).all() and (o == 0).all()


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("blocks", [(16, 16), (7, 13), (48, 5), (64, 64)])
def test_flash_attention_equals_naive_with_gradients(causal, blocks):
    q, k, v = _qkv(grad=True)
    ref = attention.naive_attention(q, k, v, causal)
    out = attention.flash_attention(q, k, v, causal, *blocks)
    assert (out - ref).abs().max() < TOL
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(ref, (q, k, v), g), torch.autograd.grad(out, (q, k, v), g)):
        assert (a - b).abs().max() < TOL
    # the mask matters: causal and full differ
    assert (attention.naive_attention(q, k, v, not causal) - ref).abs().max() > 1e-2


def test_naive_attention_matches_torch_sdpa():
    q, k, v = _qkv()
    for causal in (False, True):
        sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert (attention.naive_attention(q, k, v, causal) - sdpa).abs().max() < TOL


@pytest.mark.parametrize("seq_len,block", [(128, 16), (256, 32), (200, 64)])
def test_largest_intermediate_measured_equals_formula(seq_len, block):
    naive = attention.measure_largest_intermediate(attention.naive_attention, seq_len, 8, 2)
    tiled = attention.measure_largest_intermediate(attention.flash_attention, seq_len, 8, 2, block, block,
                                           causal=True)
    assert naive.measured_bytes == naive.predicted_bytes == 2 * 4 * seq_len**2
    assert tiled.measured_bytes == tiled.predicted_bytes == 2 * 4 * max(block * block, seq_len * 8)
    assert tiled.measured_bytes < naive.measured_bytes


def test_memory_formulas_and_validation():
    assert attention.score_matrix_bytes(32768, 32, 1, 2) == 32 * 32768**2 * 2  # 68.7 GB per layer
    assert attention.largest_intermediate_bytes(1024, 64, 1, 128, 128) == 4 * 1024 * 64
    with pytest.raises(ValueError, match="block_q and block_k"):
        attention.largest_intermediate_bytes(10, 2, 1, 4, None)
    with pytest.raises(ValueError, match="seq_len"):
        attention.score_matrix_bytes(0, 1)
    with pytest.raises(ValueError, match="block_q"):
        attention.flash_attention(*_qkv(), block_q=0)
    with pytest.raises(ValueError, match="shapes"):
        attention.naive_attention(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4))


# ----------------------------------------------------------------------------------------------
# Layouts and work per rank
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("scheme", sharding.SCHEMES)
def test_shard_unshard_and_work_formula(p, scheme):
    s = 2 * p * 6
    pos = [sharding.positions_of_rank(s, p, r, scheme) for r in range(p)]
    assert sorted(torch.cat(pos).tolist()) == list(range(s))  # a partition of the tokens
    x = torch.randn(2, s, 3)
    assert torch.equal(sharding.unshard([sharding.shard(x, p, r, scheme) for r in range(p)], scheme), x)
    work = sharding.causal_work_per_rank(s, p, scheme)
    assert work == [sharding.causal_pairs(t) for t in pos]  # closed form == brute force
    assert sum(work) == s * (s + 1) // 2
    if scheme == "zigzag":
        assert len(set(work)) == 1
        assert sharding.chunks_of_rank(p, 0, scheme) == [0, 2 * p - 1]
        assert all(b == {"full": 2 * p - 1, "diagonal": 2, "skipped": 2 * p - 1}
                   for b in sharding.causal_blocks_per_rank(p, scheme))
    else:
        assert work == sorted(work) and (p == 1 or work[-1] > work[0])
        if p > 1:  # last rank / first rank -> 2p - 1 for long sequences
            big = sharding.causal_work_per_rank(2**16 * p, p, scheme)
            assert big[-1] / big[0] == pytest.approx(2 * p - 1, rel=1e-3)


def test_layout_validation():
    with pytest.raises(ValueError, match="scheme"):
        sharding.chunks_of_rank(2, 0, "striped")
    with pytest.raises(ValueError, match="multiple of 4 chunks"):
        sharding.positions_of_rank(10, 2, 0, "zigzag")
    with pytest.raises(ValueError, match="rank"):
        sharding.chunks_of_rank(2, 2)


# ----------------------------------------------------------------------------------------------
# Ring attention on real gloo ranks
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 4])
@pytest.mark.parametrize("scheme", sharding.SCHEMES)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_ring_attention_equals_single_process(p, scheme, causal):
    q, k, v = _qkv((2, 2, 8 * p, 8), seed=p, grad=True)
    g = torch.randn(q.shape, generator=torch.Generator().manual_seed(7))
    out, res = workers.run_ring_attention(q.detach(), k.detach(), v.detach(), p, causal, scheme,
                                     grad_out=g, timeout_s=60)
    ref = attention.naive_attention(q, k, v, causal)
    assert (out - ref).abs().max() < TOL
    # gradients: the distributed backward == autograd on single-process attention
    for name, want in zip(("dq", "dk", "dv"), torch.autograd.grad(ref, (q, k, v), g)):
        got = sharding.unshard([x[name] for x in res], scheme)
        assert (got - want).abs().max() < TOL, name
    s = q.shape[-2]
    block = cost.kv_block_bytes(s // p, d_model=2 * 8, n_heads=2, micro_batch=2, bytes_per_element=4)
    kw = dict(d_model=16, n_heads=2, micro_batch=2, bytes_per_element=4)
    for r, x in enumerate(res):
        # bytes sent == (p - 1) K/V blocks forward, (2p - 1) backward; block size == formula
        assert x["kv_block_bytes"] == 2 * 2 * 2 * (s // p) * 8 * 4 == block
        assert x["sent_bytes"] == (p - 1) * block == cost.ring_kv_bytes_per_rank(s, p, **kw)
        assert x["messages_sent"] == p - 1
        assert x["backward_sent_bytes"] == (2 * p - 1) * block == cost.ring_kv_bytes_per_rank(
            s, p, **kw, backward=True)
        # score pairs computed == the formula (causal) or all of them (full)
        want = sharding.causal_work_per_rank(s, p, scheme)[r] if causal else (s // p) * s
        assert x["score_pairs"] == want
    if causal and scheme == "contiguous":
        assert [x["blocks_skipped"] for x in res] == list(range(p - 1, -1, -1))
    if causal and scheme == "zigzag":
        assert all(x["blocks_computed"] == p and x["blocks_skipped"] == 0 for x in res)


def test_ring_attention_runs_in_the_context_parallel_group_of_a_grid():
    """cp = 2 × dp = 2 on 4 ranks: two rings of two ranks each, side by side; each ring's
    shards reassemble to attention on one process, values and gradients."""
    from labutils.parallel.grid import GridShape
    from labutils.parallel.launch import launch

    shape = GridShape(dp=2, cp=2)
    q, k, v = _qkv()
    grad_out = torch.randn_like(q)
    res = launch(workers.ring_attention_worker, 4, q, k, v, True, "zigzag", grad_out, shape,
                 timeout_s=60)
    full = [t.clone().requires_grad_() for t in (q, k, v)]
    expected = attention.naive_attention(*full, causal=True)
    expected.backward(grad_out)
    for ring_ranks in shape.groups("cp"):
        ranks = sorted((res[g] for g in ring_ranks), key=lambda x: x["cp_rank"])
        assert [x["cp_rank"] for x in ranks] == [0, 1]
        assert (sharding.unshard([x["out"] for x in ranks]) - expected).abs().max() < TOL
        for name, t in (("dq", full[0]), ("dk", full[1]), ("dv", full[2])):
            assert (sharding.unshard([x[name] for x in ranks]) - t.grad).abs().max() < TOL
        assert all(x["messages_sent"] == 1 for x in ranks)  # p − 1 = 1 K/V block each

def test_ring_attention_forward_only_and_one_rank():
    q, k, v = _qkv((1, 2, 12, 4), seed=3)
    out, res = workers.run_ring_attention(q, k, v, 1, True, "zigzag", timeout_s=60)
    assert (out - attention.naive_attention(q, k, v, True)).abs().max() < TOL
    assert res[0]["sent_bytes"] == 0 and "dq" not in res[0]
    assert cost.ring_kv_bytes_per_rank(12, 1, 8, 2, backward=True) == 0


def test_ring_attention_needs_a_process_group():
    with pytest.raises(RuntimeError, match="process group"):
        ring.ring_attention(*_qkv())


# ----------------------------------------------------------------------------------------------
# Cost model
# ----------------------------------------------------------------------------------------------


def test_kv_bytes_formula():
    # 128k tokens, cp 8, d_model 8192, 64 heads, 8 KV heads (GQA), bf16
    got = cost.ring_kv_bytes_per_rank(131072, 8, 8192, 64, 8)
    assert got == 7 * 2 * (131072 // 8) * 128 * 8 * 2
    assert cost.ring_kv_bytes_per_rank(4096, 1, 512, 8) == 0
    assert cost.ring_kv_bytes_per_rank(131072, 8, 8192, 64, 8, backward=True) == 15 * got // 7
    with pytest.raises(ValueError, match="cp"):
        cost.ring_kv_bytes_per_rank(100, 3, 512, 8)


@pytest.mark.parametrize("flash", [True, False])
def test_cp_activation_bytes(flash):
    s, b, h, a = 8192, 1, 4096, 32
    one = cost.cp_activation_bytes_per_layer(s, b, h, a, 1, flash=flash)
    full = activation_bytes_per_layer(s, b, h, a, dropout=False)
    sel = activation_bytes_per_layer(s, b, h, a, recompute="selective", dropout=False)
    assert one == (sel if flash else full)
    for c in (2, 4, 8):  # CP divides every term by c
        assert cost.cp_activation_bytes_per_layer(s, b, h, a, c, flash=flash) == one // c


def test_compute_bound_length():
    peak = get("H100-SXM").peak_flops("bf16")
    n_nv = cost.compute_bound_tokens_per_rank(peak, NVSWITCH.bandwidth_bytes_per_s)
    n_ib = cost.compute_bound_tokens_per_rank(peak, INFINIBAND.bandwidth_bytes_per_s)
    assert n_nv == pytest.approx(2 * peak / (2 * 900e9))  # e·F/(2B) with e = 2
    assert n_ib / n_nv == pytest.approx(18)  # 900 / 50
    for n_kv, mfu, alpha, f in [(32, 1.0, 0.0, 1.0), (8, 0.5, 5e-6, 0.5), (1, 0.4, 1e-5, 1.0)]:
        kw = dict(d_model=4096, n_heads=32, n_kv_heads=n_kv, mfu=mfu, causal_fraction=f)
        n = cost.compute_bound_tokens_per_rank(peak, 50e9, latency_s=alpha, **kw)
        step = cost.ring_step(math.ceil(n), 4096, peak, 50e9, n_heads=32, n_kv_heads=n_kv, mfu=mfu,
                            latency_s=alpha, causal_fraction=f)
        assert step.hidden and step.step_s == step.compute_s
        below = cost.ring_step(math.floor(0.9 * n), 4096, peak, 50e9, n_heads=32, n_kv_heads=n_kv,
                             mfu=mfu, latency_s=alpha, causal_fraction=f)
        assert not below.hidden
        at = cost.ring_step(1000, 4096, peak, 50e9, n_heads=32, n_kv_heads=n_kv, mfu=mfu,
                          latency_s=alpha, causal_fraction=f)
        assert at.compute_s == pytest.approx(4 * 1000**2 * 4096 * f / (mfu * peak))
    with pytest.raises(ValueError, match="bandwidth"):
        cost.compute_bound_tokens_per_rank(peak, 0.0)


def test_widget_renders_tested_numbers():
    pytest.importorskip("ipywidgets")
    from labutils.widgets import context_parallel as W

    html = W.report(131072, 8, 8192, 128, 8, "H100-SXM", "nvswitch")
    sent = cost.ring_kv_bytes_per_rank(131072, 8, 8192, 64, 8)
    assert f"{sent / 1e9:,.3f} GB in 7 steps" in html and "hidden" in html
    assert "exposed" in W.report(8192, 64, 2048, 128, 16, "H100-SXM", "infiniband", False, 1.0)
    panel = W.context_parallel_explorer()
    assert "tokens per rank" in panel.children[-1].value
    dm, kv = panel.children[3], panel.children[5]
    dm.value, kv.value = 5120, 16  # 40 heads of 128 cannot share 16 K/V heads: the error shows
    assert "must divide" in panel.children[-1].value
    kv.value = 8
    assert "tokens per rank" in panel.children[-1].value


# ----------------------------------------------------------------------------------------------
# Bad input, swept over every public cost-model function: an error naming the argument
# ----------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_POS_REAL = [0, 0.0, -1, NAN, INF, -INF, True, "1", None]
BAD_NON_NEG_REAL = [-1, -1e-9, NAN, INF, -INF, True, "1", None]
BAD_FRACTION = [*BAD_POS_REAL, 1.5]  # a share in (0, 1]
BAD_BOOL = [0, 1, "yes", None]
_Q = torch.zeros(1, 8, 4)

CP_BAD_CASES = [
    (lambda x: sharding.chunks_of_rank(x, 0), "world_size", BAD_POS_INT),
    (lambda x: sharding.chunks_of_rank(2, x), "rank", [-1, 2, 2.5, True, None]),
    (lambda x: sharding.chunks_of_rank(2, 0, x), "scheme", ["ring", None]),
    (lambda x: sharding.n_chunks(x), "world_size", BAD_POS_INT),
    (lambda x: sharding.positions_of_rank(x, 2, 0), "seq_len", [*BAD_POS_INT, 6]),
    (lambda x: sharding.causal_work_per_rank(x, 2), "seq_len", [*BAD_POS_INT, 6]),
    (lambda x: sharding.causal_work_per_rank(8, x), "world_size", [*BAD_POS_INT, 3]),
    (lambda x: sharding.causal_blocks_per_rank(x), "world_size", BAD_POS_INT),
    (lambda x: cost.kv_block_bytes(x, 64, 8), "tokens", BAD_POS_INT),
    (lambda x: cost.kv_block_bytes(16, x, 8), "d_model", [*BAD_POS_INT, 60]),
    (lambda x: cost.kv_block_bytes(16, 64, x), "n_heads", [*BAD_POS_INT, 3]),
    (lambda x: cost.kv_block_bytes(16, 64, 8, x), "n_kv_heads", [*BAD_POS_INT[:-1], 3, 16]),
    (lambda x: cost.kv_block_bytes(16, 64, 8, 2, x), "micro_batch", BAD_POS_INT),
    (lambda x: cost.kv_block_bytes(16, 64, 8, 2, 1, x), "bytes_per_element", BAD_POS_INT),
    (lambda x: cost.ring_kv_bytes_per_rank(x, 2, 64, 8), "seq_len", BAD_POS_INT),
    (lambda x: cost.ring_kv_bytes_per_rank(128, x, 64, 8), "cp", [*BAD_POS_INT, 3]),
    (lambda x: cost.ring_kv_bytes_per_rank(128, 2, 64, 8, x), "n_kv_heads", [0, 3, 16, True]),
    (lambda x: cost.ring_kv_bytes_per_rank(128, 2, 64, 8, backward=x), "backward", BAD_BOOL),
    (lambda x: cost.cp_activation_bytes_per_layer(128, 1, 64, 8, x), "cp", [*BAD_POS_INT, 3]),
    (lambda x: cost.cp_activation_bytes_per_layer(x, 1, 64, 8, 2), "seq_len", BAD_POS_INT),
    (lambda x: cost.cp_activation_bytes_per_layer(128, 1, 64, 8, 2, flash=x), "flash", BAD_BOOL),
    (lambda x: cost.block_attention_flops(x, 64), "tokens_per_rank", BAD_POS_INT),
    (lambda x: cost.block_attention_flops(16, x), "d_model", BAD_POS_INT),
    (lambda x: cost.block_attention_flops(16, 64, x), "micro_batch", BAD_POS_INT),
    (lambda x: cost.block_attention_flops(16, 64, 1, x), "causal_fraction", BAD_FRACTION),
    (lambda x: cost.ring_step(16, 64, x, 1e9), "peak_flops", BAD_POS_REAL),
    (lambda x: cost.ring_step(16, 64, 1e12, x), "bandwidth_bytes_per_s", BAD_POS_REAL),
    (lambda x: cost.ring_step(16, 64, 1e12, 1e9, mfu=x), "mfu", BAD_FRACTION),
    (lambda x: cost.ring_step(16, 64, 1e12, 1e9, latency_s=x), "latency_s", BAD_NON_NEG_REAL),
    (lambda x: cost.ring_step(16, 64, 1e12, 1e9, n_heads=8, n_kv_heads=x), "n_kv_heads", [0, 3, 16]),
    (lambda x: cost.compute_bound_tokens_per_rank(x, 1e9), "peak_flops", BAD_POS_REAL),
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, x), "bandwidth_bytes_per_s", BAD_POS_REAL),
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, 1e9, d_model=x, n_heads=8), "d_model",
     [*BAD_POS_INT, 60]),
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, 1e9, n_heads=8, n_kv_heads=x), "n_kv_heads",
     [*BAD_POS_INT[:-1], 3, 16]),  # None means "as many as the heads"
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, 1e9, mfu=x), "mfu", BAD_FRACTION),
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, 1e9, latency_s=x), "latency_s",
     BAD_NON_NEG_REAL),
    (lambda x: cost.compute_bound_tokens_per_rank(1e12, 1e9, causal_fraction=x), "causal_fraction",
     BAD_FRACTION),
    (lambda x: attention.score_matrix_bytes(x, 8), "seq_len", BAD_POS_INT),
    (lambda x: attention.score_matrix_bytes(128, x), "n_heads", BAD_POS_INT),
    (lambda x: attention.score_matrix_bytes(128, 8, x), "micro_batch", BAD_POS_INT),
    (lambda x: attention.score_matrix_bytes(128, 8, 1, x), "bytes_per_element", BAD_POS_INT),
    (lambda x: attention.largest_intermediate_bytes(x, 64), "seq_len", BAD_POS_INT),
    (lambda x: attention.largest_intermediate_bytes(128, x), "head_dim", BAD_POS_INT),
    (lambda x: attention.largest_intermediate_bytes(128, 64, x), "batch_heads", BAD_POS_INT),
    (lambda x: attention.largest_intermediate_bytes(128, 64, 1, x, 16), "block_q", BAD_POS_INT),
    (lambda x: attention.largest_intermediate_bytes(128, 64, 1, 16, x), "block_k", BAD_POS_INT),
    (lambda x: attention.online_softmax(torch.zeros(3, 8), x), "block", BAD_POS_INT),
    (lambda x: attention.flash_attention(_Q, _Q, _Q, block_q=x), "block_q", BAD_POS_INT),
    (lambda x: attention.flash_attention(_Q, _Q, _Q, causal=x), "causal", BAD_BOOL),
    (lambda x: attention.naive_attention(_Q, _Q, _Q, causal=x), "causal", BAD_BOOL),
    (lambda x: attention.naive_attention(x, _Q, _Q), "q", [None, [[1.0]], torch.zeros(8, 3)]),
]


@pytest.mark.parametrize("call, name, bad_values", CP_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(CP_BAD_CASES)])
def test_every_cost_function_refuses_bad_input(call, name, bad_values):
    """Negative, zero, NaN, inf, bool, wrong types, shares above 1 and head counts that do not
    divide: ValueError or TypeError naming the argument (n_kv_heads=3 of 8 heads, an MFU of 1.5
    and a causal fraction of 1.5 used to give numbers)."""
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=name):
            call(bad)


@given(n_heads=st.integers(1, 64), n_kv_heads=st.integers(1, 64))
@settings(max_examples=60, deadline=None)
def test_kv_heads_must_divide_the_heads(n_heads, n_kv_heads):
    """Property (grouped-query attention): each K/V head serves n_heads/n_kv_heads query heads,
    so a count that does not divide the heads (or exceeds them) is refused."""
    d_model = 64 * n_heads
    if n_kv_heads > n_heads or n_heads % n_kv_heads:
        with pytest.raises(ValueError, match="n_kv_heads"):
            cost.kv_block_bytes(16, d_model, n_heads, n_kv_heads)
    else:  # 2 (K and V) · tokens · head_dim · kv heads · 2 bytes
        assert cost.kv_block_bytes(16, d_model, n_heads, n_kv_heads) == 2 * 16 * 64 * n_kv_heads * 2
