"""Number formats (Chapter 9): layouts against torch.finfo, the lecture's table and the FP8 paper;
rounding against torch's own casts; bits against torch's bit patterns; swamping and underflow."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from labutils import memory
from labutils import precision

TORCH_FLOATS = [k for k in precision.TORCH_DTYPES if k != "int8"]
BIT_VIEWS = {"fp16": torch.int16, "bf16": torch.int16, "fp8_e4m3": torch.uint8,
             "fp8_e5m2": torch.uint8}


def wide_sample(n: int = 50_000) -> torch.Tensor:
    """fp32 values over 60 binades, both signs, plus the special values and boundary cases."""
    g = torch.Generator().manual_seed(0)
    mag = torch.randn(n, generator=g) * 10 ** (torch.rand(n, generator=g) * 18 - 12)
    special = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e30, -1e30, 1e-45, 65504.0, 65520.0,
               65519.99, 448.0, 464.0, 480.0, 57344.0, 61440.0, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25]
    return torch.cat([mag, torch.tensor(special)]).float()


# ----------------------------------------------------------------------------------------------
# Range and precision from the layout
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_FLOATS)
def test_layout_matches_torch_finfo(name):
    fi = torch.finfo(precision.TORCH_DTYPES[name])
    f = precision.get_format(name)
    assert f.bits == fi.bits
    assert precision.max_finite(name) == fi.max
    assert precision.smallest_normal(name) == fi.smallest_normal == fi.tiny
    assert precision.machine_epsilon(name) == fi.eps
    # torch's `resolution` is 10^-floor(m·log10 2): our digits minus the implicit bit's share.
    assert fi.resolution == pytest.approx(10.0 ** -math.floor(precision.decimal_digits(name) - math.log10(2)))


def test_smallest_subnormals_are_the_next_value_after_zero():
    for name in TORCH_FLOATS:
        tiny = precision.smallest_subnormal(name)
        dt = precision.TORCH_DTYPES[name]
        if name != "fp32":  # represents exactly, and half of it rounds to 0 (ties to even)
            assert float(torch.tensor(tiny, dtype=torch.float64).to(dt)) == tiny
            assert float(torch.tensor(tiny / 2, dtype=torch.float64).to(dt)) == 0.0
    assert precision.smallest_subnormal("fp32") == float(np.nextafter(np.float32(0), np.float32(1)))
    assert precision.smallest_subnormal("fp16") == 2.0**-24
    assert precision.smallest_subnormal("tf32") == 2.0**-136


def test_lecture_summary_table():
    for name, row in precision.LECTURE_TABLE.items():
        assert precision.lecture_row(name) == row, name
    # INT8: 8 bits, 7 of magnitude, -128..127
    i8 = precision.get_format("int8")
    assert (i8.min_value, i8.max_value) == (torch.iinfo(torch.int8).min, torch.iinfo(torch.int8).max)


def test_fp8_paper_maxima_and_e4m3_special_encoding():
    for name, expected in precision.FP8_PAPER_MAX.items():
        assert precision.max_finite(name) == expected
    # E4M3 without FN's trick (IEEE specials) would stop at 1.875 · 2^7 = 240.
    ieee_e4m3 = precision.FloatFormat("e4m3_ieee", 4, 3, 8, True, "hypothetical")
    assert precision.max_finite(ieee_e4m3) == 240.0
    assert precision.max_exponent("fp8_e4m3") == 8 and precision.max_exponent(ieee_e4m3) == 7
    # Only S.1111.111 is NaN, and there are no infinities.
    vals = precision.all_values("fp8_e4m3")
    assert int(torch.isnan(vals).sum()) == 2 and not bool(torch.isinf(vals).any())
    assert precision.bit_string(math.nan, "fp8_e4m3") == "0 1111 111"
    assert precision.bit_string(448.0, "fp8_e4m3") == "0 1111 110"
    # E5M2 follows IEEE: inf at 11111.00, three NaN mantissas per sign.
    vals = precision.all_values("fp8_e5m2")
    assert int(torch.isinf(vals).sum()) == 2 and int(torch.isnan(vals).sum()) == 6


def test_bf16_has_fp32_range_and_tf32_fp16_precision():
    assert precision.max_exponent("bf16") == precision.max_exponent("fp32") == 127
    assert precision.smallest_normal("bf16") == precision.smallest_normal("fp32")
    assert precision.machine_epsilon("tf32") == precision.machine_epsilon("fp16") == 2.0**-10
    assert precision.get_format("tf32").bits == 19 and precision.get_format("tf32").storage_bytes == 4
    assert precision.dynamic_range_decades("fp16") == pytest.approx(math.log10(65504 / 2.0**-24))


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2"])
def test_enumerated_fp8_values_match_torch_bit_patterns(name):
    codes = torch.arange(256, dtype=torch.uint8)
    theirs = codes.view(precision.TORCH_DTYPES[name]).to(torch.float64)
    ours = precision.all_values(name)
    same = (ours == theirs) | (torch.isnan(ours) & torch.isnan(theirs))
    assert bool(same.all())


def test_spacing_against_enumerated_neighbours_and_numpy():
    vals = precision.all_values("fp8_e5m2")
    pos = torch.unique(vals[torch.isfinite(vals) & (vals >= 0)])
    for a, b in zip(pos[:-1].tolist(), pos[1:].tolist()):
        assert precision.spacing(a, "fp8_e5m2") == b - a
    for x in (1.0, 3.0, 1000.0, 1e-5, 1e-7, 60000.0):
        assert precision.spacing(x, "fp16") == float(np.spacing(np.float16(x)))
        assert precision.spacing(x, "fp32") == float(np.spacing(np.float32(x)))
    assert precision.spacing(1.0, "bf16") == precision.machine_epsilon("bf16")


def test_bad_formats_and_values_are_refused():
    with pytest.raises(ValueError, match="fmt must be one of"):
        precision.get_format("fp64x")
    with pytest.raises(ValueError, match="floating-point"):
        precision.max_finite("int8")
    with pytest.raises(ValueError, match="exponent_bits"):
        precision.FloatFormat("bad", 1, 3, 8, True, "")
    with pytest.raises(TypeError, match="x must be"):
        precision.round_to_format([1.0], "fp16")
    with pytest.raises(ValueError, match="n_params"):
        precision.weights_bytes(0, "fp16")
    with pytest.raises(ValueError, match="exponent_field"):
        precision.decode(0, 32, 0, "fp16")


# ----------------------------------------------------------------------------------------------
# Rounding and bits
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_FLOATS)
def test_round_to_format_equals_torch_cast(name):
    x = wide_sample()
    ours = precision.round_to_format(x, name)
    theirs = x.to(precision.TORCH_DTYPES[name]).to(torch.float64)
    same = (ours == theirs) | (torch.isnan(ours) & torch.isnan(theirs))
    assert bool(same.all()), x[~same][:5]


def test_tf32_rounding_keeps_10_fraction_bits():
    x = wide_sample()
    x = x[torch.isfinite(x)]
    r = precision.round_to_format(x, "tf32").float()
    low13 = r.view(torch.int32) & 0x1FFF  # the 13 fraction bits fp32 has and tf32 drops
    assert int(low13.abs().sum()) == 0
    assert bool(((r.double() - x.double()).abs() <= x.double().abs() * 2.0**-11 + 2.0**-137).all())


@pytest.mark.parametrize("name", list(BIT_VIEWS))
def test_encode_matches_torch_bits(name):
    f = precision.get_format(name)
    x = torch.randn(300, generator=torch.Generator().manual_seed(1)) * 40
    x = torch.cat([x, torch.tensor([0.0, 1e-6, -2.0**-20, 1e6])])
    bits = x.to(precision.TORCH_DTYPES[name]).view(BIT_VIEWS[name]).to(torch.int64) & (2**f.bits - 1)
    for v, b in zip(x.tolist(), bits.tolist()):
        s, e, m = precision.encode(v, name)
        assert (s << (f.bits - 1)) | (e << f.mantissa_bits) | m == b, v
        assert precision.decode(s, e, m, name) == float(precision.round_to_format(torch.tensor([v]), name)[0])
    assert precision.bit_string(1.0, "fp16") == "0 01111 0000000000"
    assert precision.bit_string(-2.0, "bf16") == "1 10000000 0000000"


@pytest.mark.parametrize("name", ["fp16", "bf16", "tf32", "fp8_e4m3", "fp8_e5m2"])
def test_relative_rounding_error_is_at_most_half_eps_and_reaches_it(name):
    g = torch.Generator().manual_seed(2)
    # normal-range values: magnitudes 2^[0, 4) spread evenly over the mantissa
    x = (1 + torch.rand(200_000, generator=g, dtype=torch.float64)) * 2.0 ** torch.randint(0, 4, (200_000,), generator=g)
    err = precision.relative_rounding_error(x, name)
    u = precision.unit_roundoff(name)
    assert float(err.max()) <= u
    # The bound is tight: the worst case, just above a power of two, is u / (1 + u).
    assert float(err.max()) > 0.99 * u / (1 + u)


def test_swamping_bf16_loses_small_updates_fp32_keeps_them():
    # 10,000 updates of 1e-4 to a weight of 1.0: bf16's spacing at 1 is 2^-7, so 1 + 1e-4 = 1.
    assert precision.accumulate(1.0, 1e-4, 10_000, "bf16") == 1.0
    assert precision.accumulate(1.0, 1e-4, 10_000, "fp16") == 1.0
    assert precision.accumulate(1.0, 1e-4, 10_000, "fp32") == pytest.approx(2.0, rel=1e-3)
    # With an fp32 master copy the bf16 weight used in the forward pass does move.
    master = precision.accumulate(1.0, 1e-4, 10_000, "fp32")
    assert float(precision.round_to_format(torch.tensor([master]), "bf16")[0]) == 2.0
    # An update above half the spacing survives even in bf16.
    assert precision.accumulate(1.0, 2.0**-7, 10, "bf16") > 1.0


def test_underflow_fractions():
    v = torch.tensor([1.0, 1e-5, 1e-9, 1e5, -3e-8])
    out = precision.underflow_fractions(v, "fp16")
    assert out == pytest.approx({"zero": 0.2, "subnormal": 0.4, "overflow": 0.2, "normal": 0.2})
    assert precision.underflow_fractions(v, "bf16") == pytest.approx(
        {"zero": 0.0, "subnormal": 0.0, "overflow": 0.0, "normal": 1.0})
    with pytest.raises(ValueError, match="non-zero"):
        precision.underflow_fractions(torch.zeros(3), "fp16")


# ----------------------------------------------------------------------------------------------
# Memory: the lecture's examples
# ----------------------------------------------------------------------------------------------


def test_lecture_memory_examples():
    # Lecture 003: 1B parameters = 4 GB @ 32-bit, 2 GB @ 16-bit, 1 GB @ 8-bit.
    assert precision.weights_bytes(1e9, "fp32") == 4e9
    assert precision.weights_bytes(1e9, "fp16") == precision.weights_bytes(1e9, "bf16") == 2e9
    assert precision.weights_bytes(1e9, "int8") == precision.weights_bytes(1e9, "fp8_e4m3") == 1e9
    # ... and training needs 24 GB per 1B; 4,200 GB for 175B, 12,000 GB for 500B.
    assert memory.lecture_training_bytes(1e9) == 24e9
    assert memory.lecture_training_bytes(175e9) == 4200e9
    assert memory.lecture_training_bytes(500e9) == 12000e9


def test_plot_layout_draws_one_box_per_bit():
    fig, ax = plt.subplots()
    precision.plot_layout(ax, "bf16", 1.0)
    assert len(ax.patches) == 16
    precision.plot_layout(ax, "tf32", 1.0, y=1)
    assert len(ax.patches) == 16 + 19 + 1  # TF32's 13 unused stored bits as one hatched box
    plt.close(fig)


def test_widget_renders_and_reports_rounding():
    from labutils.widgets.precision import describe_value, format_explorer

    panel = format_explorer()
    assert "bf16" in panel.children[4].value and "0 10000000 1001001" in panel.children[4].value
    r = describe_value(1e-8, "fp16")
    assert r["region"] == "zero" and r["rounded"] == 0.0
    assert describe_value(70000.0, "fp16")["region"] == "overflow"
    assert describe_value(1.0 + 2.0**-9, "bf16")["rounded"] == 1.0


# ---- bad input (missing checks before: a bool was encoded as 1.0, a list crashed deep inside)
@pytest.mark.parametrize("bad", [True, False, "1.0", None, [1.0]])
def test_encode_and_bit_string_refuse_non_numbers(bad):
    with pytest.raises(TypeError, match="value must be a real number"):
        precision.encode(bad, "bf16")
    with pytest.raises(TypeError, match="value must be a real number"):
        precision.bit_string(bad, "fp16")


@pytest.mark.parametrize("bad", [1.0, -1, float("nan"), True, None, [1e-5, 2e-5],
                                 torch.tensor([1, 2])])
def test_underflow_fractions_needs_a_float_tensor(bad):
    with pytest.raises(TypeError, match="values must be a floating-point torch.Tensor"):
        precision.underflow_fractions(bad, "fp16")
