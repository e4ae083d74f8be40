"""Tests for the reference GPT (labutils.nn.gpt): shapes, loss, causality, sdpa == math, bad input."""

from __future__ import annotations

import math

import pytest
import torch

import labutils
from labutils.model import tiny_config
from labutils.nn import GPT
from labutils.nn.gpt import apply_rope, rope_tables

VARIANTS = {
    "gpt2-like": dict(),
    "llama-like": dict(mlp="swiglu", tied_embeddings=False, bias=False, norm="rmsnorm", positional="rope"),
    "gelu-rope-untied": dict(positional="rope", tied_embeddings=False),
    "llama-gqa": dict(mlp="swiglu", tied_embeddings=False, bias=False, norm="rmsnorm",
                      positional="rope", n_kv_heads=2),
    "multi-query": dict(n_kv_heads=1),
}


def _model(over: dict, attn_impl: str = "math", seed: int = 0) -> GPT:
    labutils.seed_everything(seed)
    return GPT(tiny_config(**over), attn_impl=attn_impl).eval()


@pytest.fixture
def idx() -> torch.Tensor:
    return torch.randint(0, 64, (3, 20), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_shapes_and_loss(name, idx):
    model = _model(VARIANTS[name])
    logits, loss = model(idx)
    assert logits.shape == (3, 20, 64) and loss is None
    targets = torch.randint(0, 64, idx.shape, generator=torch.Generator().manual_seed(2))
    logits, loss = model(idx, targets)
    assert loss.shape == () and torch.isfinite(loss)
    # At init (std 0.02) the logits are near zero, so the loss on unrelated targets is near ln(V).
    # (With targets = idx a tied model scores lower: the head is the embedding of the input.)
    assert abs(loss.item() - math.log(64)) < 0.1


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_sdpa_equals_math(name, idx):
    m_math = _model(VARIANTS[name], "math")
    m_sdpa = _model(VARIANTS[name], "sdpa")
    m_sdpa.load_state_dict(m_math.state_dict())
    a, la = m_math(idx, idx)
    b, lb = m_sdpa(idx, idx)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-6)


def test_causal_future_tokens_do_not_leak(idx):
    model = _model(VARIANTS["gpt2-like"])
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % 64
    a, _ = model(idx)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_tied_head_shares_storage():
    tied = GPT(tiny_config())
    assert tied.head.weight is tied.tok_emb.weight
    untied = GPT(tiny_config(tied_embeddings=False))
    assert untied.head.weight is not untied.tok_emb.weight


def test_rope_is_a_rotation():
    cos, sin = rope_tables(8, 4)
    x = torch.randn(2, 3, 8, 4)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0])  # position 0: angle 0


def test_backward_reaches_every_parameter(idx):
    model = _model(VARIANTS["llama-like"]).train()
    _, loss = model(idx, idx)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_deterministic_init():
    a, b = _model({}, seed=3), _model({}, seed=3)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), na


@pytest.mark.parametrize(
    "make_input,exc,match",
    [
        (lambda: torch.zeros(3, 20), TypeError, "idx"),  # float ids
        (lambda: torch.zeros(20, dtype=torch.long), TypeError, "idx"),  # 1-D
        (lambda: [[1, 2, 3]], TypeError, "idx"),  # not a tensor
        (lambda: torch.zeros(2, 33, dtype=torch.long), ValueError, "seq_len"),  # longer than context
        (lambda: torch.zeros(2, 0, dtype=torch.long), ValueError, "seq_len"),
    ],
)
def test_bad_idx_raises(make_input, exc, match):
    with pytest.raises(exc, match=match):
        GPT(tiny_config())(make_input())


def test_bad_targets_raise(idx):
    model = GPT(tiny_config())
    with pytest.raises(TypeError, match="targets"):
        model(idx, idx[:, :-1])
    with pytest.raises(TypeError, match="targets"):
        model(idx, idx.float())


def test_bad_attn_impl_raises():
    with pytest.raises(ValueError, match="attn_impl"):
        GPT(tiny_config(), attn_impl="flash")


# ---------------------------------------------------------------------------------------------
# Grouped-query attention against a plain implementation
# ---------------------------------------------------------------------------------------------


def _plain_gqa_attention(attn, x: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention written out by hand: K/V heads repeated with repeat_interleave,
    then ordinary causal multi-head attention (Ainslie et al. 2023, Sec. 2.2)."""
    B, T, C = x.shape
    nh, nkv, hs = attn.n_heads, attn.n_kv_heads, attn.head_dim
    q = (x @ attn.wq.weight.T + attn.wq.bias).view(B, T, nh, hs).transpose(1, 2)
    k = (x @ attn.wk.weight.T + attn.wk.bias).view(B, T, nkv, hs).transpose(1, 2)
    v = (x @ attn.wv.weight.T + attn.wv.bias).view(B, T, nkv, hs).transpose(1, 2)
    k = k.repeat_interleave(nh // nkv, dim=1)  # query head i reads K/V head i // (nh / nkv)
    v = v.repeat_interleave(nh // nkv, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    z = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v  # (B, nh, T, hs)
    return z.transpose(1, 2).reshape(B, T, C) @ attn.wo.weight.T + attn.wo.bias


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
@pytest.mark.parametrize("attn_impl", ["math", "sdpa"])
def test_gqa_attention_equals_plain_repeat_interleave(n_kv_heads, attn_impl):
    labutils.seed_everything(0)
    cfg = tiny_config(n_kv_heads=n_kv_heads)  # 4 query heads of 8
    attn = GPT(cfg, attn_impl=attn_impl).blocks[0].attn
    assert attn.wk.weight.shape == attn.wv.weight.shape == (n_kv_heads * cfg.head_dim, cfg.d_model)
    x = torch.randn(2, 12, cfg.d_model)
    torch.testing.assert_close(attn(x), _plain_gqa_attention(attn, x), rtol=1e-5, atol=1e-6)


def test_gqa_query_heads_of_a_group_share_keys():
    """Perturbing K/V head 0's weights changes query heads 0 and 1 only (2 groups of 2)."""
    labutils.seed_everything(0)
    attn = GPT(tiny_config(n_kv_heads=2)).blocks[0].attn
    x = torch.randn(1, 6, 32)
    _, k0, _ = attn.qkv(x)
    with torch.no_grad():
        attn.wk.weight[:8] += 1.0  # the first K/V head (head size 8)
    _, k1, _ = attn.qkv(x)
    changed = [(k1[:, h] - k0[:, h]).abs().max().item() > 0 for h in range(4)]
    assert changed == [True, True, False, False]
