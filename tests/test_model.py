"""Tests for labutils.model: configuration validation, exact parameter counts, published presets."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labutils.model import (
    PRESETS,
    TransformerConfig,
    count_params,
    default_d_ff,
    non_embedding_params,
    param_breakdown,
    preset,
    preset_info,
    tiny_config,
)
from labutils.nn import GPT

# ---------------------------------------------------------------------------------------------
# Published presets. Every number the chapter shows is pinned here.
# ---------------------------------------------------------------------------------------------


def test_gpt2_small_exact():
    # Released checkpoint (HF "gpt2"): 124,439,808 parameters; Radford et al. 2019 print 117M.
    assert count_params(preset("gpt2-small")) == 124_439_808


def test_llama_7b_exact():
    # Released LLaMA-7B checkpoint: 6,738,415,616 parameters (Touvron et al. 2023 print 6.7B).
    cfg = preset("llama-7b")
    assert cfg.ffn_dim == 11008
    assert default_d_ff(4096, "swiglu") == 11008
    assert count_params(cfg) == 6_738_415_616
    assert round(count_params(cfg) / 1e9, 1) == 6.7  # the printed digits


def test_gpt3_175b_matches_table_d1():
    # Brown et al. 2020, Table D.1 prints 174,600M parameters; Table 2.1 rounds to 175.0B.
    n = count_params(preset("gpt3-175b"))
    assert n == 174_604_259_328
    assert round(n / 1e8) * 100 == 174_600  # in millions, rounded as Table D.1 prints it
    assert preset_info("gpt3-175b").published_params == 174_600e6


def test_chinchilla_70b_with_relative_positions():
    p = preset_info("chinchilla-70b")
    cfg = p.config
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.head_dim) == (8192, 80, 64, 128)  # Table 4
    assert p.extra_params == 80 * 8192 * 8192  # one d×d relative-position projection per layer
    assert round(p.count() / 1e9) == 70  # printed "70B"
    # Without the relative-position projections the count misses "70B" by ~5B:
    assert round(count_params(cfg) / 1e9) == 65
    # Tying would change it by V·d = 0.26B, still "70B": the rounding cannot tell.
    assert round((p.count() - 32_000 * 8192) / 1e9) == 70


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_presets_within_their_tolerance(key):
    p = PRESETS[key]
    assert p.source and p.published_label and p.config.name == p.name
    assert abs(p.count() - p.published_params) <= p.rel_tol * p.published_params
    if p.exact_params is not None:
        assert p.count() == p.exact_params
    bd = p.breakdown()
    assert bd["total"] == p.count() == sum(v for k, v in bd.items() if k != "total")


def test_preset_lookup():
    assert preset("LLaMA-7B") is PRESETS["llama-7b"].config
    with pytest.raises(ValueError, match="unknown preset"):
        preset("gpt-5")
    with pytest.raises(TypeError, match="name"):
        preset(7)  # type: ignore[arg-type]


def test_gpt2_breakdown_by_hand():
    bd = param_breakdown(preset("gpt2-small"))
    d, V, T, L = 768, 50257, 1024, 12
    assert bd["embedding"] == V * d + T * d
    assert bd["attention"] == L * (4 * d * d + 4 * d)
    assert bd["mlp"] == L * (8 * d * d + 5 * d)
    assert bd["norm"] == (2 * L + 1) * 2 * d
    assert bd["head"] == 0
    assert non_embedding_params(preset("gpt2-small")) == bd["attention"] + bd["mlp"] + bd["norm"]


# ---------------------------------------------------------------------------------------------
# count_params == the nn.Module, over every combination of options
# ---------------------------------------------------------------------------------------------

OPTIONS = list(
    itertools.product(
        ("gelu", "swiglu"), (True, False), (True, False), ("layernorm", "rmsnorm"), ("learned", "rope")
    )
)


@pytest.mark.parametrize("mlp,tied,bias,norm,pos", OPTIONS)
def test_count_matches_module(mlp, tied, bias, norm, pos):
    cfg = tiny_config(mlp=mlp, tied_embeddings=tied, bias=bias, norm=norm, positional=pos, d_ff=48)
    model = GPT(cfg)
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    bd = param_breakdown(cfg)
    emb = model.tok_emb.weight.numel() + (model.pos_emb.weight.numel() if model.pos_emb is not None else 0)
    assert bd["embedding"] == emb
    assert bd["head"] == (0 if tied else model.head.weight.numel())
    assert bd["attention"] == sum(p.numel() for b in model.blocks for p in b.attn.parameters())
    assert bd["mlp"] == sum(p.numel() for b in model.blocks for p in b.mlp.parameters())


@settings(max_examples=25, deadline=None)
@given(
    d_head=st.integers(1, 8).map(lambda x: 2 * x),
    n_heads=st.integers(1, 4),
    n_layers=st.integers(1, 3),
    vocab=st.integers(2, 50),
    mlp=st.sampled_from(("gelu", "swiglu")),
    tied=st.booleans(),
    bias=st.booleans(),
    norm=st.sampled_from(("layernorm", "rmsnorm")),
    pos=st.sampled_from(("learned", "rope")),
)
def test_count_matches_module_property(d_head, n_heads, n_layers, vocab, mlp, tied, bias, norm, pos):
    cfg = TransformerConfig(
        vocab_size=vocab, seq_len=8, d_model=d_head * n_heads, n_layers=n_layers, n_heads=n_heads,
        mlp=mlp, tied_embeddings=tied, bias=bias, norm=norm, positional=pos,
    )
    assert count_params(cfg) == sum(p.numel() for p in GPT(cfg).parameters())


# ---------------------------------------------------------------------------------------------
# Monotone growth and validation
# ---------------------------------------------------------------------------------------------

sizes = st.fixed_dictionaries(
    {
        "vocab_size": st.integers(1, 100_000),
        "seq_len": st.integers(1, 8192),
        "n_heads": st.integers(1, 64),
        "head_dim": st.integers(1, 64).map(lambda x: 2 * x),
        "n_layers": st.integers(1, 128),
        "mlp": st.sampled_from(("gelu", "swiglu")),
        "tied_embeddings": st.booleans(),
        "bias": st.booleans(),
        "norm": st.sampled_from(("layernorm", "rmsnorm")),
        "positional": st.sampled_from(("learned", "rope")),
    }
)


def _cfg(s: dict, **over) -> TransformerConfig:
    s = {**s, **over}
    hd = s.pop("head_dim")
    return TransformerConfig(d_model=hd * s["n_heads"], **s)


@settings(max_examples=60, deadline=None)
@given(s=sizes)
def test_count_grows_monotonically(s):
    base = count_params(_cfg(s))
    assert count_params(_cfg(s, n_layers=s["n_layers"] + 1)) > base
    assert count_params(_cfg(s, head_dim=s["head_dim"] + 2)) > base  # wider
    assert count_params(_cfg(s, vocab_size=s["vocab_size"] + 1)) > base
    grown_ctx = count_params(_cfg(s, seq_len=s["seq_len"] + 1))
    assert grown_ctx > base if s["positional"] == "learned" else grown_ctx == base
    if s["tied_embeddings"]:
        assert count_params(_cfg(s, tied_embeddings=False)) > base
    assert all(v >= 0 for v in param_breakdown(_cfg(s)).values())


@pytest.mark.parametrize(
    "over,exc,match",
    [
        (dict(d_model=30, n_heads=4), ValueError, "divisible"),
        (dict(d_model=0), ValueError, "d_model"),
        (dict(n_layers=-1), ValueError, "n_layers"),
        (dict(vocab_size=1.5), TypeError, "vocab_size"),
        (dict(n_heads=True), TypeError, "n_heads"),
        (dict(d_ff=0), ValueError, "d_ff"),
        (dict(mlp="relu"), ValueError, "mlp"),
        (dict(norm="batchnorm"), ValueError, "norm"),
        (dict(positional="alibi"), ValueError, "positional"),
        (dict(positional="rope", d_model=24, n_heads=8), ValueError, "rope"),
        (dict(bias=1), TypeError, "bias"),
        (dict(tied_embeddings="yes"), TypeError, "tied_embeddings"),
    ],
)
def test_bad_config_raises(over, exc, match):
    with pytest.raises(exc, match=match):
        tiny_config(**over)


@settings(max_examples=40, deadline=None)
@given(d_model=st.integers(1, 512), n_heads=st.integers(1, 64))
def test_divisibility_property(d_model, n_heads):
    if d_model % n_heads:
        with pytest.raises(ValueError, match="divisible"):
            TransformerConfig(vocab_size=10, seq_len=4, d_model=d_model, n_layers=1, n_heads=n_heads)
    else:
        cfg = TransformerConfig(vocab_size=10, seq_len=4, d_model=d_model, n_layers=1, n_heads=n_heads)
        assert cfg.head_dim * cfg.n_heads == d_model


def test_config_is_frozen():
    cfg = tiny_config()
    with pytest.raises(AttributeError):
        cfg.d_model = 64  # type: ignore[misc]


def test_published_training_budgets():
    from labutils.flops import training_flops

    gpt3 = preset_info("gpt3-175b")
    assert gpt3.train_tokens == 300e9  # Brown et al. 2020, Sec. 2.2
    # Table D.1 reports 3.14e23 FLOPs; 6·N·D with our exact N reproduces it to 3 digits.
    assert round(training_flops(gpt3.count(), gpt3.train_tokens) / 1e23, 2) == 3.14 == gpt3.published_train_flops / 1e23
    assert preset_info("chinchilla-70b").train_tokens == 1.4e12  # Hoffmann et al. 2022, Table 1
    assert preset_info("llama-7b").train_tokens == 1.0e12  # Touvron et al. 2023, Table 2
    assert preset_info("gpt2-small").train_tokens is None  # not published


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "d_ff")),
    value=st.integers(-10_000, 0),
)
def test_non_positive_sizes_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        tiny_config(**{field: value})



# ---------------------------------------------------------------------------------------------
# Grouped-query attention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_gqa_count_matches_module(n_kv_heads, bias):
    cfg = tiny_config(n_kv_heads=n_kv_heads, bias=bias)
    model = GPT(cfg)
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    assert param_breakdown(cfg)["attention"] == sum(
        p.numel() for b in model.blocks for p in b.attn.parameters())
    assert cfg.kv_dim == n_kv_heads * cfg.head_dim and cfg.query_group_size == 4 // n_kv_heads


def test_n_kv_heads_defaults_to_n_heads():
    cfg = tiny_config()
    assert cfg.n_kv_heads == cfg.n_heads and cfg.kv_dim == cfg.d_model
    assert cfg == tiny_config(n_kv_heads=cfg.n_heads)


@pytest.mark.parametrize("key", ["llama3-8b", "llama3-70b", "llama3-405b"])
def test_llama3_presets_use_eight_kv_heads(key):
    cfg = preset(key)
    assert cfg.n_kv_heads == 8 and cfg.head_dim == 128  # Dubey et al. 2024, Table 3
    # without GQA the same shape would hold 2·L·d·(d − 1024) more weights
    mha = replace(cfg, n_kv_heads=cfg.n_heads)
    assert count_params(mha) - count_params(cfg) == 2 * cfg.n_layers * cfg.d_model * (
        cfg.d_model - 8 * 128)


@pytest.mark.parametrize("bad,exc", [(3, ValueError), (0, ValueError), (8, ValueError),
                                     (2.0, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_n_kv_heads_is_refused(bad, exc):
    with pytest.raises(exc, match="n_kv_heads"):
        tiny_config(n_kv_heads=bad)  # 4 heads: 1, 2 or 4 K/V heads
