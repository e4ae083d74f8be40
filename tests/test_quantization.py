"""INT8 quantization (Chapter 9): absmax and zero-point per tensor and per row, the error bound
scale/2, int32-accumulated matmuls, and LLM.int8()'s outlier decomposition."""

from __future__ import annotations

import pytest
import torch

from labutils import quantization


def sample(rows: int = 64, cols: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * torch.rand(rows, 1, generator=g) * 3 + 0.5


@pytest.mark.parametrize("fn", [quantization.absmax_quantize, quantization.zeropoint_quantize])
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_error_is_at_most_half_a_step(fn, dim):
    x = sample()
    qt = fn(x, dim)
    assert qt.q.dtype == torch.int8
    err = (x - qt.dequantize()).abs()
    assert bool((err <= qt.error_bound() * (1 + 1e-5)).all())
    assert quantization.quantization_error(x, qt)["max_over_bound"] > 0.9  # and the bound is nearly reached
    if dim is not None:
        assert qt.scale.shape[dim] == 1 and qt.scale.numel() == x.shape[1 - dim]


def test_absmax_formula_and_codes():
    x = torch.tensor([[-2.0, 0.5, 1.0], [0.1, -0.2, 0.05]])
    qt = quantization.absmax_quantize(x, dim=1)
    assert torch.allclose(qt.scale.squeeze(), torch.tensor([2 / 127, 0.2 / 127]))
    assert qt.q.tolist() == [[-127, 32, 64], [64, -127, 32]]
    assert float(quantization.absmax_quantize(x).scale) == pytest.approx(2 / 127)
    assert quantization.absmax_error_bound(2.0) == pytest.approx(2 / 254)
    assert quantization.absmax_error_bound(2.0, bits=4) == pytest.approx(2 / 14)


def test_zeropoint_uses_all_256_codes_on_a_skewed_range():
    x = torch.rand(10_000, generator=torch.Generator().manual_seed(3)) * 5 + 2  # [2, 7]: one-sided
    zp, am = quantization.zeropoint_quantize(x), quantization.absmax_quantize(x)
    assert int(zp.q.min()) == -128 and int(zp.q.max()) == 127
    assert int(am.q.min()) > 0  # absmax wastes the negative codes
    assert quantization.quantization_error(x, zp)["max_abs"] < 0.6 * quantization.quantization_error(x, am)["max_abs"]


def test_per_row_beats_per_tensor_when_rows_differ_in_scale():
    x = sample()
    per_tensor = quantization.quantization_error(x, quantization.absmax_quantize(x))["relative"]
    per_row = quantization.quantization_error(x, quantization.absmax_quantize(x, dim=1))["relative"]
    assert per_row < 0.8 * per_tensor


def test_one_outlier_inflates_the_per_tensor_error():
    x = torch.randn(4096, generator=torch.Generator().manual_seed(4))
    clean = quantization.quantization_error(x, quantization.absmax_quantize(x))
    x[0] = 60.0
    dirty = quantization.quantization_error(x, quantization.absmax_quantize(x))
    # The step grows from max|x|/127 (about 3.5/127) to 60/127, and so does the typical error.
    assert dirty["mean_abs"] > 10 * clean["mean_abs"]


def test_int8_matmul_accumulates_exactly_in_int32():
    a, b = sample(16, 64, 1), sample(64, 8, 2)
    qa, qb = quantization.absmax_quantize(a, dim=1), quantization.absmax_quantize(b, dim=0)
    exact_int = qa.q.double() @ qb.q.double()
    approx = quantization.int8_matmul(a, b)
    assert torch.allclose(approx.double(), exact_int * qa.scale.double() * qb.scale.double(), rtol=1e-6)
    assert quantization.relative_matmul_error(approx, a @ b) < 0.02


def test_llm_int8_decomposition_removes_the_outlier_error():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 512, generator=g)
    w = torch.randn(512, 256, generator=g) * 0.05
    assert not bool(quantization.outlier_columns(x, threshold=10.0).any())
    x[:, [3, 200]] *= 25.0  # two outlier feature dimensions, as in Dettmers et al. 2022, Sec. 4
    assert quantization.outlier_columns(x).nonzero().flatten().tolist() == [3, 200]
    exact = x @ w
    e_tensor = quantization.relative_matmul_error(quantization.int8_matmul(x, w, vector_wise=False), exact)
    e_vector = quantization.relative_matmul_error(quantization.int8_matmul(x, w), exact)
    e_llm = quantization.relative_matmul_error(quantization.llm_int8_matmul(x, w), exact)
    assert e_llm < 0.25 * e_vector < e_tensor
    assert e_llm < 0.01
    # with no outliers, LLM.int8() is plain vector-wise int8
    y = torch.randn(32, 128, generator=g)
    w2 = torch.randn(128, 16, generator=g)
    assert torch.equal(quantization.llm_int8_matmul(y, w2, threshold=100.0), quantization.int8_matmul(y, w2))


def test_bad_input():
    with pytest.raises(TypeError, match="x must be"):
        quantization.absmax_quantize(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="finite"):
        quantization.absmax_quantize(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="dim"):
        quantization.absmax_quantize(torch.ones(2, 2), dim=2)
    with pytest.raises(ValueError, match="absmax"):
        quantization.absmax_error_bound(0.0)


# ---- bad input (used to crash with AttributeError, or accept any truthy flag)
NOT_TENSORS = [1.0, -1, float("nan"), True, None, [[1.0, 2.0]]]


@pytest.mark.parametrize("bad", NOT_TENSORS)
def test_matmuls_name_a_bad_operand(bad):
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="w must be a floating-point"):
        quantization.llm_int8_matmul(x, bad)
    with pytest.raises(TypeError, match="b must be a floating-point"):
        quantization.int8_matmul(x, bad)
    with pytest.raises(TypeError, match="exact must be a floating-point"):
        quantization.relative_matmul_error(x, bad)


def test_matmul_shapes_and_nonfinite_values_are_refused():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="matching k"):
        quantization.llm_int8_matmul(x, torch.randn(4, 3))
    with pytest.raises(ValueError, match="w must be non-empty and finite"):
        quantization.llm_int8_matmul(x, torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="same shape"):
        quantization.relative_matmul_error(x, torch.randn(3, 4))
    with pytest.raises(ValueError, match="non-zero"):
        quantization.relative_matmul_error(x, torch.zeros(4, 3))


@pytest.mark.parametrize("bad", [1, 0, "yes", None, float("nan")])
def test_vector_wise_must_be_a_bool(bad):
    with pytest.raises(TypeError, match="vector_wise"):
        quantization.int8_matmul(torch.randn(4, 3), torch.randn(3, 2), vector_wise=bad)


def test_quantization_error_checks_qt():
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="qt must be a Quantized"):
        quantization.quantization_error(x, x)
    with pytest.raises(ValueError, match="qt must quantize a tensor of x's shape"):
        quantization.quantization_error(x, quantization.absmax_quantize(torch.randn(2, 2)))
