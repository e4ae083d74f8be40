"""Number formats as bit layouts, and rounding to them (Chapter 9, mixed precision).

A floating-point number is ``(-1)^s · 1.f · 2^(E - bias)``: a sign bit, an exponent field ``E``
of ``exponent_bits`` bits and a fraction (mantissa) field ``f`` of ``mantissa_bits`` bits. Every
property a practitioner quotes (largest value, smallest normal and subnormal value, machine
epsilon, decimal digits) follows from those two numbers. This module computes them from the
layout, rounds tensors to any such format with plain torch arithmetic, and encodes values as
bit strings. The chapter checks each function against ``torch.finfo`` and torch's own casts.

Sources: lecture ``003_f67430602ab4012b.txt`` ("Quantization: Summary" table: bits, exponent,
fraction, bytes of FP32, FP16, BFLOAT16 and INT8); IEEE 754 for fp32 and fp16; Kalamkar et al.
2019 for bfloat16 (fp32's 8 exponent bits, 7 fraction bits); Micikevicius et al. 2022 ("FP8
Formats for Deep Learning", Sec. 3, Table 1) for E4M3 (max 448) and E5M2 (max 57344); NVIDIA's
A100 whitepaper for TF32 (fp32's range, fp16's 10 fraction bits, stored in 32 bits).

Units: values are plain numbers (floats); ``*_bytes`` are bytes; GB = 1e9 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import torch

from labutils.course import L3, lecture_cite
from labutils.validate import integer, number

LECTURE_FORMATS = lecture_cite(L3, "'Quantization: Summary'")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, ``exponent_bits``, ``mantissa_bits``."""

    name: str
    exponent_bits: int  # width of the biased exponent field
    mantissa_bits: int  # width of the fraction field (the leading 1 of normals is implicit)
    storage_bits: int  # bits one value occupies in memory (TF32 uses 19 of 32 stored bits)
    ieee_specials: bool  # True: max exponent field = inf/NaN (IEEE 754). False: E4M3's "FN"
    # encoding, which has no infinities and only one NaN mantissa pattern (all ones)
    source: str

    def __post_init__(self) -> None:
        integer("exponent_bits", self.exponent_bits, 2, 11)
        integer("mantissa_bits", self.mantissa_bits, 1, 52)
        integer("storage_bits", self.storage_bits, self.bits)

    @property
    def bits(self) -> int:
        """Bits that carry information: sign + exponent + mantissa."""
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        """Exponent bias, 2^(e-1) - 1 (127 for fp32 and bf16, 15 for fp16, 7 for E4M3)."""
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def storage_bytes(self) -> int:
        """Bytes per value in memory."""
        return self.storage_bits // 8


@dataclass(frozen=True)
class IntFormat:
    """A two's-complement integer format (INT8: -128..127)."""

    name: str
    bits: int
    source: str

    def __post_init__(self) -> None:
        integer("bits", self.bits, 2, 64)

    @property
    def value_bits(self) -> int:
        """Bits of magnitude (the lecture's 'fraction' column: 7 for INT8)."""
        return self.bits - 1

    @property
    def max_value(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def min_value(self) -> int:
        return -(2 ** (self.bits - 1))

    @property
    def storage_bytes(self) -> int:
        return self.bits // 8


FORMATS: dict[str, FloatFormat | IntFormat] = {
    "fp32": FloatFormat("fp32", 8, 23, 32, True, "IEEE 754 binary32; lecture 003"),
    "tf32": FloatFormat("tf32", 8, 10, 32, True, "NVIDIA A100 whitepaper (TensorFloat-32)"),
    "fp16": FloatFormat("fp16", 5, 10, 16, True, "IEEE 754 binary16; lecture 003"),
    "bf16": FloatFormat("bf16", 8, 7, 16, True, "Kalamkar et al. 2019; lecture 003"),
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 3, 8, False, "Micikevicius et al. 2022, Table 1"),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 5, 2, 8, True, "Micikevicius et al. 2022, Table 1"),
    "int8": IntFormat("int8", 8, "two's complement; lecture 003"),
}
FLOAT_FORMATS = tuple(k for k, v in FORMATS.items() if isinstance(v, FloatFormat))

# torch dtypes with the same layout (tf32 is a compute mode of fp32 matmuls, not a storage dtype).
TORCH_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
    "fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2, "int8": torch.int8,
}

# Lecture 003, "Quantization: Summary": bits, exponent, fraction, bytes per value.
LECTURE_TABLE = {
    "fp32": {"bits": 32, "exponent": 8, "fraction": 23, "bytes": 4},
    "fp16": {"bits": 16, "exponent": 5, "fraction": 10, "bytes": 2},
    "bf16": {"bits": 16, "exponent": 8, "fraction": 7, "bytes": 2},
    "int8": {"bits": 8, "exponent": None, "fraction": 7, "bytes": 1},  # "-/-": no exponent
}

# Micikevicius et al. 2022 ("FP8 Formats for Deep Learning"), Table 1: max normal magnitudes.
FP8_PAPER_MAX = {"fp8_e4m3": 448.0, "fp8_e5m2": 57344.0}


def get_format(fmt: str | FloatFormat | IntFormat) -> FloatFormat | IntFormat:
    """A format by name (see ``FORMATS``), or the format itself."""
    if isinstance(fmt, (FloatFormat, IntFormat)):
        return fmt
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt]


def get_float_format(fmt: str | FloatFormat) -> FloatFormat:
    """A floating-point format by name; integer formats are refused."""
    f = get_format(fmt)
    if not isinstance(f, FloatFormat):
        raise ValueError(f"fmt must be a floating-point format {FLOAT_FORMATS}, got {fmt!r}")
    return f


# ----------------------------------------------------------------------------------------------
# Range and precision from the bit layout
# ----------------------------------------------------------------------------------------------


def min_exponent(fmt: str | FloatFormat) -> int:
    """Unbiased exponent of the smallest normal number: 1 - bias (E = 0 is reserved for subnormals)."""
    return 1 - get_float_format(fmt).bias


def max_exponent(fmt: str | FloatFormat) -> int:
    """Unbiased exponent of the largest finite number.

    IEEE formats reserve the all-ones exponent field for inf/NaN: E_max = 2^e - 2 - bias. E4M3
    (FN) keeps it for numbers, so E_max = 2^e - 1 - bias = 8 (Micikevicius et al. 2022, Sec. 3).
    """
    f = get_float_format(fmt)
    top_field = 2**f.exponent_bits - (2 if f.ieee_specials else 1)
    return top_field - f.bias


def max_finite(fmt: str | FloatFormat) -> float:
    """Largest finite value: (2 - 2^-m) · 2^E_max, with all mantissa bits set.

    E4M3 reserves the all-ones mantissa at the top exponent for NaN, so its largest mantissa is
    1.110b = 1.75 and its max is 1.75 · 2^8 = 448; an IEEE-style E4M3 would stop at
    1.875 · 2^7 = 240.
    """
    f = get_float_format(fmt)
    top_mantissa = 2 - 2.0 ** -f.mantissa_bits * (1 if f.ieee_specials else 2)
    return math.ldexp(top_mantissa, max_exponent(f))


def smallest_normal(fmt: str | FloatFormat) -> float:
    """Smallest positive normal value, 2^(1 - bias)."""
    return math.ldexp(1.0, min_exponent(fmt))


def smallest_subnormal(fmt: str | FloatFormat) -> float:
    """Smallest positive value (a subnormal), 2^(1 - bias - m): below it everything rounds to 0."""
    f = get_float_format(fmt)
    return math.ldexp(1.0, min_exponent(f) - f.mantissa_bits)


def machine_epsilon(fmt: str | FloatFormat) -> float:
    """Gap between 1 and the next representable number, 2^-m (``torch.finfo(dtype).eps``)."""
    return math.ldexp(1.0, -get_float_format(fmt).mantissa_bits)


def unit_roundoff(fmt: str | FloatFormat) -> float:
    """Largest relative error of round-to-nearest on normal numbers: eps/2 = 2^-(m+1)."""
    return machine_epsilon(fmt) / 2


def decimal_digits(fmt: str | FloatFormat) -> float:
    """Significant decimal digits: (m + 1) · log10(2), counting the implicit leading bit."""
    return (get_float_format(fmt).mantissa_bits + 1) * math.log10(2)


def dynamic_range_decades(fmt: str | FloatFormat) -> float:
    """log10(max finite / smallest subnormal): the decades of magnitude the format spans."""
    return math.log10(max_finite(fmt) / smallest_subnormal(fmt))


def spacing(x: float, fmt: str | FloatFormat) -> float:
    """Gap between consecutive representable numbers around |x| (an ulp), 2^(max(e, E_min) - m).

    ``e = floor(log2 |x|)``; below the smallest normal the gap stays at the subnormal spacing.
    """
    f = get_float_format(fmt)
    x = abs(number("x", x))
    e = math.frexp(x)[1] - 1 if x > 0 else min_exponent(f)
    return math.ldexp(1.0, max(e, min_exponent(f)) - f.mantissa_bits)


def format_row(fmt: str | FloatFormat | IntFormat) -> dict[str, object]:
    """One row of the chapter's range-and-precision table (floats only have the float columns)."""
    f = get_format(fmt)
    if isinstance(f, IntFormat):
        return {"format": f.name, "bits": f.bits, "exponent": "-", "mantissa": f.value_bits,
                "bytes": f.storage_bytes, "max": float(f.max_value), "smallest normal": "-",
                "smallest subnormal": "1 (integers)", "eps": "-", "digits": "-"}
    return {"format": f.name, "bits": f.bits, "exponent": f.exponent_bits,
            "mantissa": f.mantissa_bits, "bytes": f.storage_bytes, "max": max_finite(f),
            "smallest normal": smallest_normal(f), "smallest subnormal": smallest_subnormal(f),
            "eps": machine_epsilon(f), "digits": decimal_digits(f)}


def lecture_row(fmt: str) -> dict[str, int | None]:
    """Our format's entry in the layout of lecture 003's summary table (bits/exponent/fraction/bytes)."""
    f = get_format(fmt)
    if isinstance(f, IntFormat):
        return {"bits": f.bits, "exponent": None, "fraction": f.value_bits, "bytes": f.storage_bytes}
    return {"bits": f.bits, "exponent": f.exponent_bits, "fraction": f.mantissa_bits,
            "bytes": f.storage_bytes}


def weights_bytes(n_params: int, fmt: str) -> int:
    """Bytes to store ``n_params`` weights in ``fmt`` (lecture 003: 1B params = 4 GB at 32 bits,
    2 GB at 16 bits, 1 GB at 8 bits)."""
    n = integer("n_params", n_params, 1, integral_float=True)
    return n * get_format(fmt).storage_bytes


# ----------------------------------------------------------------------------------------------
# Rounding and bits
# ----------------------------------------------------------------------------------------------


def round_to_format(x: torch.Tensor, fmt: str | FloatFormat) -> torch.Tensor:
    """Round every element of ``x`` to the nearest value of ``fmt`` (ties to even), as float64.

    Works from the layout alone, with exact power-of-two arithmetic in float64: at magnitude
    2^e the representable numbers are spaced q = 2^(max(e, E_min) - m), so the rounded value is
    round(x / q) · q (``torch.round`` breaks ties to even). Beyond the range, IEEE formats give
    ±inf (values from max + q/2 up); E4M3 has no infinities and, like torch's cast, saturates
    to ±448. NaN stays NaN. For fp16, bf16 and both FP8 formats the result equals
    ``x.to(dtype)`` exactly (tests check it); for TF32 this is the rounding an A100's tensor
    cores apply to matmul inputs.
    """
    f = get_float_format(fmt)
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    x = x.to(torch.float64)
    finite = torch.isfinite(x)
    xf = torch.where(finite, x, torch.zeros_like(x))
    _, exp = torch.frexp(xf)  # |x| = mant · 2^exp with mant in [0.5, 1): floor(log2|x|) = exp - 1
    e = torch.clamp(exp.to(torch.int64) - 1, min=min_exponent(f))
    q = torch.ldexp(torch.ones_like(xf), e - f.mantissa_bits)  # spacing at this magnitude
    y = torch.round(xf / q) * q
    big = max_finite(f)
    over = y.abs() > big
    if f.ieee_specials:
        y = torch.where(over, torch.copysign(torch.full_like(y, math.inf), y), y)
        return torch.where(finite, y, x)  # ±inf and NaN pass through
    y = torch.where(over, torch.copysign(torch.full_like(y, big), y), y)
    return torch.where(torch.isnan(x), x, torch.where(finite, y, torch.copysign(torch.full_like(y, big), x)))


def relative_rounding_error(x: torch.Tensor, fmt: str | FloatFormat) -> torch.Tensor:
    """|round(x) - x| / |x| per element (float64); x must be non-zero and finite."""
    x64 = x.to(torch.float64)
    if not bool(torch.isfinite(x64).all()) or bool((x64 == 0).any()):
        raise ValueError("x must hold finite, non-zero values")
    return (round_to_format(x64, fmt) - x64).abs() / x64.abs()


def encode(value: float, fmt: str | FloatFormat) -> tuple[int, int, int]:
    """(sign, exponent field, mantissa field) of ``value`` after rounding it to ``fmt``.

    ``value`` is any real number; ±inf and NaN are accepted on purpose (they have bit patterns).
    """
    f = get_float_format(fmt)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"value must be a real number (inf and NaN allowed), got "
                        f"{type(value).__name__} ({value!r})")
    v = float(round_to_format(torch.tensor([float(value)], dtype=torch.float64), f)[0])
    all_ones_e, all_ones_m = 2**f.exponent_bits - 1, 2**f.mantissa_bits - 1
    if math.isnan(v):
        return 0, all_ones_e, all_ones_m if not f.ieee_specials else 1 << (f.mantissa_bits - 1)
    sign = 1 if math.copysign(1.0, v) < 0 else 0
    a = abs(v)
    if math.isinf(a):
        return sign, all_ones_e, 0
    if a == 0:
        return sign, 0, 0
    e = math.frexp(a)[1] - 1
    if e < min_exponent(f):  # subnormal: 0.f · 2^E_min
        return sign, 0, int(a / math.ldexp(1.0, min_exponent(f) - f.mantissa_bits))
    mantissa = int((a / math.ldexp(1.0, e) - 1) * 2**f.mantissa_bits)
    return sign, e + f.bias, mantissa


def decode(sign: int, exponent_field: int, mantissa_field: int, fmt: str | FloatFormat) -> float:
    """The value a bit pattern stands for (inverse of :func:`encode`)."""
    f = get_float_format(fmt)
    s = integer("sign", sign, 0, 1)
    E = integer("exponent_field", exponent_field, 0, 2**f.exponent_bits - 1)
    M = integer("mantissa_field", mantissa_field, 0, 2**f.mantissa_bits - 1)
    top = 2**f.exponent_bits - 1
    if f.ieee_specials and E == top:
        value = math.inf if M == 0 else math.nan
    elif not f.ieee_specials and E == top and M == 2**f.mantissa_bits - 1:
        value = math.nan
    elif E == 0:
        value = math.ldexp(M, min_exponent(f) - f.mantissa_bits)
    else:
        value = math.ldexp(1 + M / 2**f.mantissa_bits, E - f.bias)
    return -value if s else value


def bit_string(value: float, fmt: str | FloatFormat) -> str:
    """``value`` rounded to ``fmt`` as 'sign exponent mantissa' bits, e.g. '0 01111 0000000000'."""
    f = get_float_format(fmt)
    s, e, m = encode(value, f)
    return f"{s} {e:0{f.exponent_bits}b} {m:0{f.mantissa_bits}b}"


def all_values(fmt: str | FloatFormat) -> torch.Tensor:
    """Every value of a format with <= 16 bits, in code order (sign, exponent, mantissa), float64."""
    f = get_float_format(fmt)
    if f.bits > 16:
        raise ValueError(f"fmt must have at most 16 bits to enumerate, got {f.name} ({f.bits})")
    vals = []
    for code in range(2**f.bits):
        s = code >> (f.bits - 1)
        e = (code >> f.mantissa_bits) & (2**f.exponent_bits - 1)
        m = code & (2**f.mantissa_bits - 1)
        vals.append(decode(s, e, m, f))
    return torch.tensor(vals, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# Swamping: why weights are updated in fp32 (Micikevicius et al. 2018, Sec. 3.1)
# ----------------------------------------------------------------------------------------------


def accumulate(start: float, increment: float, n_steps: int, fmt: str | FloatFormat) -> float:
    """``start`` plus ``n_steps`` additions of ``increment``, rounding to ``fmt`` after each add.

    Each sum is exact (float64), then rounded once, as a fused hardware add would. When
    ``|increment| < spacing(start)/2`` every add rounds back to ``start``: the update is lost
    ("1 + small = 1"). Micikevicius et al. 2018 (Sec. 3.1) keep an fp32 master copy of the
    weights for this reason.
    """
    f = get_float_format(fmt)
    n = integer("n_steps", n_steps, 0)
    inc = round_to_format(torch.tensor([number("increment", increment)], dtype=torch.float64), f)
    w = round_to_format(torch.tensor([number("start", start)], dtype=torch.float64), f)
    for _ in range(n):
        w = round_to_format(w + inc, f)
    return float(w[0])


def underflow_fractions(values: torch.Tensor, fmt: str | FloatFormat) -> dict[str, float]:
    """Where non-zero ``values`` land in ``fmt``: shares that flush to zero, that are subnormal
    (fewer significant bits), that overflow (to ±inf, or saturate for E4M3), and that are normal.

    The shares are fractions of the non-zero finite entries and sum to 1.
    """
    f = get_float_format(fmt)
    if not isinstance(values, torch.Tensor) or not values.dtype.is_floating_point:
        raise TypeError(f"values must be a floating-point torch.Tensor, got {type(values).__name__}")
    v = values.detach().to(torch.float64).flatten()
    v = v[torch.isfinite(v) & (v != 0)]
    if v.numel() == 0:
        raise ValueError("values must hold at least one finite non-zero entry")
    a = v.abs()
    r = round_to_format(v, f).abs()
    zero = r == 0
    big = max_finite(f)
    over = a >= big + spacing(big, f) / 2  # IEEE: rounds to inf; E4M3: saturates to 448
    sub = ~zero & (r < smallest_normal(f))
    n = v.numel()
    out = {"zero": float(zero.sum()) / n, "subnormal": float(sub.sum()) / n,
           "overflow": float(over.sum()) / n}
    out["normal"] = 1.0 - out["zero"] - out["subnormal"] - out["overflow"]
    return out


def plot_layout(ax, fmt: str | FloatFormat, value: float = 1.0, y: float = 0.0) -> None:
    """Draw ``value``'s bits in ``fmt`` as a row of boxes at height ``y``: sign (red), exponent
    (blue), mantissa (green), one box per stored bit, labelled with the format's name."""
    from matplotlib.patches import Rectangle

    f = get_float_format(fmt)
    bits = bit_string(value, f).replace(" ", "")
    colors = ["#d62728"] + ["#1f77b4"] * f.exponent_bits + ["#2ca02c"] * f.mantissa_bits
    for i, (b, c) in enumerate(zip(bits, colors)):
        ax.add_patch(Rectangle((i, y), 0.95, 0.8, facecolor=c, alpha=0.35, edgecolor=c))
        ax.text(i + 0.47, y + 0.4, b, ha="center", va="center", fontsize=7, family="monospace")
    if f.storage_bits > f.bits:  # TF32: bits stored but not used by the tensor cores
        ax.add_patch(Rectangle((f.bits, y), f.storage_bits - f.bits - 0.05, 0.8,
                               facecolor="lightgrey", edgecolor="grey", hatch="//"))
    ax.text(-0.5, y + 0.4, f"{f.name} (1+{f.exponent_bits}+{f.mantissa_bits})", ha="right",
            va="center", fontsize=9)
