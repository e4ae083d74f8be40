"""labutils.mup: the lecture's muP table layer by layer, SP == muP at the base width, the
optimizer's groups, the abc symmetry, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labutils import mup
from labutils.model import TransformerConfig
from labutils.nn import GPT

BASE, HEAD = 64, 16  # base width and base head size of the debug models (4 heads)


def cfg(width: int, n_layers: int = 2) -> TransformerConfig:
    return TransformerConfig(vocab_size=48, seq_len=16, d_model=width, n_layers=n_layers,
                             n_heads=4, tied_embeddings=False, bias=False)


# --- the table, against the lecture's formulas (004, "Main Table") -----------------------------

@pytest.mark.parametrize("width", [64, 256, 1024])
@pytest.mark.parametrize("b_ratio", [1.0, 8.0])
def test_mup_table_matches_the_lecture_layer_by_layer(width, b_ratio):
    sigma, eta, alpha_out, L = 0.02, 3e-3, 2.0, 6
    opt = mup.OptimizerHyperparams(lr=eta, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                                   batch_ratio=b_ratio, data_ratio=100.0, alpha_data=-0.12)
    p = mup.mup(BASE, HEAD, zero_init=False, output_mult=alpha_out)
    t = mup.hyperparam_table(p, width, L, opt)
    n = width / BASE  # ñ
    lr_scale = b_ratio**0.5 * 100.0**-0.12  # b̃^0.5 · d̃^α_data, every layer
    # init std (b)
    assert t["embedding"].init_std == pytest.approx(sigma)
    assert t["hidden"].init_std == pytest.approx(sigma * n**-0.5)
    assert t["residual_out"].init_std == pytest.approx(sigma * n**-0.5 * (2 * L) ** -0.5)
    assert t["readout"].init_std == pytest.approx(sigma)
    # multiplier (a)
    assert t["embedding"].multiplier == 1.0 and t["hidden"].multiplier == 1.0
    assert t["residual_out"].multiplier == 1.0
    assert t["readout"].multiplier == pytest.approx(alpha_out / n)
    # AdamW lr (c)
    assert t["embedding"].lr == pytest.approx(eta * lr_scale)
    assert t["hidden"].lr == pytest.approx(eta / n * lr_scale)
    assert t["residual_out"].lr == pytest.approx(eta / n * lr_scale)
    assert t["readout"].lr == pytest.approx(eta * lr_scale)
    for kind in mup.LAYER_KINDS:
        # Adam moments and epsilon follow the batch ratio
        assert t[kind].betas == pytest.approx((1 - b_ratio * 0.1, 1 - b_ratio * 0.05))
        assert t[kind].eps == pytest.approx(1e-8 * b_ratio**-0.5)
    # weight decay: λ for vector-like/readout; λ·ñ for matrices (so lr·wd keeps its base value)
    assert t["embedding"].weight_decay == t["readout"].weight_decay == 0.1
    assert t["hidden"].weight_decay == pytest.approx(0.1 * n)
    assert t["hidden"].lr * t["hidden"].weight_decay == pytest.approx(eta * lr_scale * 0.1)


def test_pytorch_style_decay_shrinks_with_width_without_the_correction():
    p = mup.mup(BASE, HEAD, width_corrected_wd=False)
    shrink = [mup.layer_hyperparams("hidden", p, w, 2).lr * mup.layer_hyperparams("hidden", p, w, 2).weight_decay
              for w in (64, 128, 256)]
    assert shrink[0] == pytest.approx(2 * shrink[1]) == pytest.approx(4 * shrink[2])


def test_sp_table_is_width_independent_and_gpt2_like():
    p = mup.sp(BASE, HEAD)
    for w in (64, 512, 4096):
        t = mup.hyperparam_table(p, w, 12)
        assert t["hidden"].init_std == 0.02 and t["embedding"].init_std == 0.02
        assert t["residual_out"].init_std == pytest.approx(0.02 / math.sqrt(24))  # GPT-2 Sec. 2.3
        assert {t[k].lr for k in mup.LAYER_KINDS} == {1e-2}
        assert t["readout"].multiplier == 1.0
    assert p.attention_divisor(64) == 8.0
    assert mup.mup(BASE, HEAD).attention_divisor(64) == pytest.approx(64 / 4)  # d / √d_base
    assert mup.mup(BASE, HEAD).attention_divisor(HEAD) == pytest.approx(math.sqrt(HEAD))


def test_zero_init_zeroes_residual_out_and_readout():
    t = mup.hyperparam_table(mup.mup(BASE, HEAD), 256, 2)
    assert t["residual_out"].init_std == 0.0 and t["readout"].init_std == 0.0
    assert t["hidden"].init_std > 0 and t["embedding"].init_std > 0


def test_init_std_table_crosses_gpt2s_constant_at_2500():
    rows = dict((w, (a, b)) for w, a, b in mup.init_std_by_width([256, 2500, 8192]))
    assert rows[256][0] == 0.0625 and rows[2500][0] == pytest.approx(0.02)
    assert rows[2500][1] == pytest.approx(1.0)  # 0.02·√2500 = 1: GPT-2's std is "right" here
    assert rows[8192][0] == pytest.approx(0.011048543456039804)  # the lecture's last row


# --- the GPT under a parametrization ----------------------------------------------------------

@pytest.mark.parametrize("zero_init", [False, True])
def test_sp_and_mup_are_the_same_model_and_optimizer_at_the_base_width(zero_init):
    x = torch.randint(0, 48, (4, 16))
    y = torch.randint(0, 48, (4, 16))
    runs = []
    for p in (mup.sp(BASE, HEAD, zero_init=zero_init), mup.mup(BASE, HEAD, zero_init=zero_init)):
        torch.manual_seed(0)
        model = GPT(cfg(BASE), parametrization=p)
        opt = mup.make_adamw(model, mup.OptimizerHyperparams(lr=1e-2))
        losses = []
        for _ in range(3):
            loss = model(x, y)[1]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, [q.detach().clone() for q in model.parameters()]))
    (l_sp, p_sp), (l_mup, p_mup) = runs
    assert l_sp == l_mup  # bit for bit: same initial loss, same first updates
    assert all(torch.equal(a, b) for a, b in zip(p_sp, p_mup))


def test_sp_parametrization_is_the_plain_reference_gpt():
    torch.manual_seed(0)
    plain = GPT(cfg(128))
    torch.manual_seed(0)
    sp = GPT(cfg(128), parametrization=mup.sp(BASE, HEAD))
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), sp.parameters()))


def test_mup_gpt_init_stds_follow_the_table():
    width, L = 1024, 2
    torch.manual_seed(0)
    p = mup.mup(BASE, HEAD, zero_init=False)
    model = GPT(cfg(width, L), parametrization=p)
    t = mup.hyperparam_table(p, width, L)
    stds = {name: q.std().item() for name, q in model.named_parameters() if q.ndim == 2}
    assert stds["blocks.0.attn.wq.weight"] == pytest.approx(t["hidden"].init_std, rel=0.02)
    assert stds["blocks.1.mlp.fc_out.weight"] == pytest.approx(t["residual_out"].init_std, rel=0.02)
    assert stds["head.weight"] == pytest.approx(t["readout"].init_std, rel=0.05)
    assert stds["tok_emb.weight"] == pytest.approx(t["embedding"].init_std, rel=0.05)
    assert model.output_mult == pytest.approx(BASE / width)
    assert model.blocks[0].attn.scale_divisor == pytest.approx((width // 4) / math.sqrt(HEAD))


def test_zero_init_gpt_starts_from_uniform_predictions_at_every_width():
    for width in (64, 256):
        model = GPT(cfg(width), parametrization=mup.mup(BASE, HEAD))
        x = torch.randint(0, 48, (2, 16))
        logits, loss = model(x, x)
        assert torch.count_nonzero(logits) == 0
        assert loss.item() == pytest.approx(math.log(48))
        for block in model.blocks:
            assert torch.count_nonzero(block.attn.wq.weight) == 0
            assert torch.count_nonzero(block.attn.wo.weight) == 0
            assert torch.count_nonzero(block.mlp.fc_out.weight) == 0
            assert torch.count_nonzero(block.attn.wk.weight) > 0


def test_sdpa_and_math_agree_under_mup_attention_scale():
    torch.manual_seed(0)
    p = mup.mup(BASE, HEAD, zero_init=False)
    a = GPT(cfg(256), parametrization=p)
    b = GPT(cfg(256), attn_impl="sdpa", parametrization=p)
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 48, (2, 16))
    torch.testing.assert_close(a(x)[0], b(x)[0], rtol=1e-5, atol=1e-5)


def test_param_groups_per_kind():
    p = mup.mup(BASE, HEAD)
    model = GPT(cfg(256), parametrization=p)
    groups = mup.param_groups(model, mup.OptimizerHyperparams(lr=1e-2, eps=1e-8, batch_ratio=4.0))
    by_kind = {}
    for g in groups:
        by_kind.setdefault(g["kind"], []).append(g)
    assert set(by_kind) == set(mup.LAYER_KINDS)
    names = {id(q): n for n, q in model.named_parameters()}
    for g in groups:
        for q in g["params"]:
            assert mup.layer_kind(names[id(q)], q) == g["kind"]
        assert g["eps"] == pytest.approx(1e-8 / 2)
    hidden = by_kind["hidden"][0]
    assert hidden["lr"] == pytest.approx(1e-2 * 2 / 4) and hidden["weight_decay"] == pytest.approx(0.4)
    emb = by_kind["embedding"][0]
    assert emb["lr"] == pytest.approx(2e-2) and emb["weight_decay"] == 0.0  # tables, norms: no decay
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_layer_kinds_of_the_reference_gpt():
    model = GPT(cfg(64), parametrization=mup.sp(BASE, HEAD))
    kinds = {n: mup.layer_kind(n, q) for n, q in model.named_parameters()}
    assert kinds["tok_emb.weight"] == kinds["pos_emb.weight"] == "embedding"
    assert kinds["blocks.0.norm1.weight"] == "embedding"  # vector-like: "all biases" column
    assert kinds["blocks.0.attn.wq.weight"] == kinds["blocks.0.mlp.fc_in.weight"] == "hidden"
    assert kinds["blocks.0.attn.wo.weight"] == kinds["blocks.0.mlp.fc_out.weight"] == "residual_out"
    assert kinds["head.weight"] == "readout"


# --- the abc symmetry -----------------------------------------------------------------------

def test_lecture_abc_symmetry_example():
    y1_a, y2_a = mup.abc_symmetry_demo(lr=1.0, mult=1e-3, init_std=1 / 1e-3)
    y1_b, y2_b = mup.abc_symmetry_demo(lr=1e-3, mult=1.0, init_std=1.0)
    assert y1_a == pytest.approx(y1_b, rel=1e-4)
    assert y2_a == pytest.approx(y2_b, rel=1e-4)
    assert y2_a != pytest.approx(y1_a, rel=1e-2)  # the step did change the output
    # and a change that is not an abc shift does change y2
    _, y2_c = mup.abc_symmetry_demo(lr=1.0, mult=1.0, init_std=1.0)
    assert y2_c != pytest.approx(y2_b, rel=1e-2)


@pytest.mark.parametrize("theta", [1e-3, 0.1, 10.0])
def test_abc_shift_leaves_adam_training_unchanged(theta):
    """General statement: (mult·θ, std/θ, lr/θ) trains the same function under Adam (ε = 0)."""
    base = dict(mult=1.0, init_std=0.5, lr=1e-2)
    shifted = dict(zip(("mult", "init_std", "lr"), mup.abc_shift(theta, **base)))
    outs = []
    for hp in (base, shifted):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(32, 16, dtype=torch.float64) * hp["init_std"])
        adam = torch.optim.Adam([w], lr=hp["lr"], eps=0)
        x = torch.randn(64, 16, dtype=torch.float64)
        trace = []
        for _ in range(5):
            y = torch.tanh(x @ (hp["mult"] * w).T)
            loss = ((y - 0.3) ** 2).mean()
            adam.zero_grad()
            loss.backward()
            adam.step()
            trace.append(loss.item())
        outs.append(trace)
    assert outs[0] == pytest.approx(outs[1], rel=1e-9)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, arg", [
    (lambda: mup.Parametrization(0, 16), "base_width"),
    (lambda: mup.Parametrization(-64, 16), "base_width"),
    (lambda: mup.Parametrization(64, 0), "base_head_dim"),
    (lambda: mup.mup(64, 16).width_ratio(32), "d_model"),
    (lambda: mup.mup(64, 16).width_ratio(0), "d_model"),
    (lambda: mup.layer_hyperparams("attention", mup.mup(64, 16), 128, 2), "kind"),
    (lambda: mup.layer_hyperparams("hidden", mup.mup(64, 16), 128, 0), "n_layers"),
    (lambda: mup.OptimizerHyperparams(lr=0), "lr"),
    (lambda: mup.OptimizerHyperparams(batch_ratio=20.0), "batch_ratio"),
    (lambda: mup.OptimizerHyperparams(betas=(0.9, 1.0)), "betas[1]"),
    (lambda: mup.Parametrization(64, 16, init_std=-0.02), "init_std"),
])
def test_bad_input_names_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="hidden_lr"):
        mup.Parametrization(64, 16, hidden_lr=1)
    with pytest.raises(TypeError, match="param"):
        mup.layer_hyperparams("hidden", "muP", 128, 2)
    with pytest.raises(ValueError, match="tied_embeddings"):
        GPT(TransformerConfig(vocab_size=48, seq_len=16, d_model=64, n_layers=1, n_heads=4),
            parametrization=mup.mup(64, 16))
    with pytest.raises(ValueError, match="layer kind"):
        mup.layer_kind("blocks.0.attn.unknown.weight", torch.zeros(4, 4))


# --- the law-of-large-numbers argument, the rendered table, the widget --------------------------

def test_adam_update_grows_like_width_on_correlated_inputs_only():
    widths = (64, 256, 1024, 4096)
    same = [mup.adam_update_size(n, 1e-3) for n in widths]
    fresh = [mup.adam_update_size(n, 1e-3, same_input=False) for n in widths]
    scaled = [mup.adam_update_size(n, 1e-3 * 64 / n) for n in widths]
    slope = lambda ys: np.polyfit(np.log(widths), np.log(ys), 1)[0]  # noqa: E731
    assert slope(same) == pytest.approx(1.0, abs=0.05)  # Θ(n): lr·Σ|x_j| ≈ lr·n·√(2/π)
    assert same[-1] == pytest.approx(1e-3 * 4096 * math.sqrt(2 / math.pi), rel=0.05)
    assert slope(fresh) == pytest.approx(0.5, abs=0.1)  # Θ(√n) for an unrelated input
    assert slope(scaled) == pytest.approx(0.0, abs=0.05)  # muP's η/ñ cancels the growth


def test_table_rows_render_the_table():
    rows = mup.table_rows(mup.mup(256, 64), 4096, 24, mup.OptimizerHyperparams(lr=1e-2))
    assert [r["quantity"] for r in rows] == ["init std", "multiplier", "AdamW lr", "Adam betas",
                                             "Adam eps", "weight decay"]
    assert rows[2]["hidden"] == "0.000625" and rows[1]["readout"] == "0.0625"
    assert list(rows[0]) == ["quantity", *mup.LAYER_KINDS]


def test_widget_builds_and_reports_errors():
    from labutils.widgets.mup import mup_explorer

    panel = mup_explorer()
    text, image = panel.children[2], panel.children[3]
    assert "ñ = 16" in text.value and "0.000625" in text.value
    assert image.value[:4] == b"\x89PNG"
    controls = panel.children[1].children[0].children
    base, target = controls[0], controls[1]
    target.value = 128  # below the base width of 256
    assert "base_width" in text.value and "color:#b00" in text.value
    target.value = 512
    assert "ñ = 2" in text.value
