"""Tests for quantization-aware training in labutils.quantization: the straight-through
estimator, fake quantization, the learnable-scale parametrization, and QAT against
post-training quantization on a real tiny run (chapter 9, section 8.1)."""

from __future__ import annotations

import copy

import pytest
import torch

from labutils import data_mixture, quantization, schedules
from labutils.markov import make_source
from labutils.model import tiny_config
from labutils.train import TrainConfig, evaluate, train


def test_max_code():
    assert quantization.max_code(8) == quantization.INT8_MAX == 127
    assert quantization.max_code(2) == 1  # codes -1, 0, +1
    with pytest.raises(ValueError, match="bits"):
        quantization.max_code(1)
    with pytest.raises(TypeError, match="bits"):
        quantization.max_code(4.0)


def test_round_ste_rounds_forward_and_passes_gradients_through():
    x = torch.tensor([0.2, 0.6, -1.4, 2.5], requires_grad=True)
    y = quantization.round_ste(x)
    assert torch.equal(y, torch.round(x.detach()))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(4))  # round's true gradient would be 0 everywhere


def test_fake_quantize_matches_int8_absmax_at_8_bits():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 32, generator=g)
    qt = quantization.absmax_quantize(w, dim=1)
    fq = quantization.fake_quantize(w, qt.scale, 8)
    assert torch.allclose(fq, qt.dequantize(), atol=1e-6)


def test_fake_quantize_uses_2_to_the_bits_minus_1_levels_and_bounded_error():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 256, generator=g)
    for bits in (2, 3, 4):
        scale = w.abs().amax(dim=1, keepdim=True) / quantization.max_code(bits)
        fq = quantization.fake_quantize(w, scale, bits)
        for row, s in zip(fq, scale):
            assert len(torch.unique(row)) <= 2**bits - 1
        assert bool(((fq - w).abs() <= scale / 2 + 1e-6).all())  # inside the range: half a step


def test_fake_quantize_gradients_ste_with_clipping_and_scale():
    x = torch.tensor([0.3, -0.9, 5.0, -7.0], requires_grad=True)
    scale = torch.tensor(1.0, requires_grad=True)
    y = quantization.fake_quantize(x, scale, 3)  # codes -3..3: 5.0 and -7.0 are clipped
    assert torch.equal(y.detach(), torch.tensor([0.0, -1.0, 3.0, -3.0]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    # d/dscale of clamp(round(x/s))·s: round(x/s) - x/s inside the range (STE), ±max_code outside
    assert scale.grad.item() == pytest.approx((0 - 0.3) + (-1 + 0.9) + 3 - 3)


def test_fake_quantize_refuses_bad_input():
    with pytest.raises(TypeError, match="x"):
        quantization.fake_quantize(torch.arange(4), torch.tensor(1.0), 4)
    with pytest.raises(ValueError, match="scale"):
        quantization.fake_quantize(torch.ones(4), torch.tensor(0.0), 4)
    with pytest.raises(ValueError, match="bits"):
        quantization.fake_quantize(torch.ones(4), torch.tensor(1.0), 1)


def test_add_fake_quant_parametrizes_every_linear_and_learns_scales():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    names = quantization.add_fake_quant(model, 4)
    assert names == ["0.weight", "2.weight"]
    w = model[0].weight  # now the fake-quantized weight
    assert len(torch.unique(w[0])) <= 15
    scales = [p for n, p in model.named_parameters() if n.endswith("scale")]
    assert len(scales) == 2
    model(torch.randn(3, 4)).sum().backward()
    assert all(s.grad is not None and bool(s.grad.ne(0).any()) for s in scales)
    assert quantization.add_fake_quant(model, 4) == []  # already parametrized: nothing added
    with pytest.raises(TypeError, match="module"):
        quantization.add_fake_quant("model", 4)


@pytest.fixture(scope="module")
def trained():
    src = make_source(vocab_size=64, order=1, concentration=0.3, seed=0)
    tokens, held_out = src.sample(32, 512, seed=1), src.sample(8, 256, seed=2)
    cfg = tiny_config(vocab_size=64, seq_len=16, d_model=32, n_heads=2, n_layers=2)
    base = train(cfg, TrainConfig(tokens=150 * 16 * 16, batch_size=16, lr=1e-2, threads=1,
                                  progress=False), tokens, held_out)
    return cfg, tokens, held_out, base


def test_qat_beats_post_training_quantization_at_2_bits(trained):
    """Ternary weights (codes -1, 0, +1): quantizing a trained model costs loss (PTQ); the same
    number of extra steps with fake quantization (QAT) recovers more of it than extra float
    steps followed by PTQ."""
    cfg, tokens, held_out, base = trained

    def loss(model):
        return evaluate(model, held_out, 16, 8)

    def more_steps(model):
        return data_mixture.train_on_mixture(
            cfg, [tokens], [1], 40, eval_sets={"held-out": held_out},
            lr_fn=lambda s, n: schedules.cosine(s, n, peak_lr=3e-3, warmup_steps=4),
            init_model=model).model

    ptq = copy.deepcopy(base.model)
    quantization.add_fake_quant(ptq.blocks, 2)
    float_then_ptq = more_steps(base.model)
    quantization.add_fake_quant(float_then_ptq.blocks, 2)
    qat_start = copy.deepcopy(base.model)
    quantization.add_fake_quant(qat_start.blocks, 2)
    qat = more_steps(qat_start)
    fp_loss, ptq_loss, qat_loss = loss(base.model), loss(ptq), loss(qat)
    assert ptq_loss > fp_loss + 0.005  # 2-bit PTQ hurts
    assert qat_loss < loss(float_then_ptq)  # QAT beats the same steps in float, then PTQ
    assert qat_loss < ptq_loss - 0.005
