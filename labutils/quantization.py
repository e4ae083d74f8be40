"""INT8 quantization: absmax and zero-point, per tensor and per row, and LLM.int8()'s outliers
(Chapter 9, mixed precision and quantization).

A quantized tensor stores int8 codes ``q`` and a float scale ``c`` (and for asymmetric
quantization a zero-point ``z``): x ≈ (q - z) · c. Rounding to the nearest code makes the error
of every element inside the clipping range at most c/2.

* **absmax** (symmetric): c = max|x| / 127, q = round(x / c), z = 0 (Dettmers et al. 2022,
  "LLM.int8()", Sec. 2.1). One large value (an outlier) inflates c for everything that
  shares it.
* **zero-point** (asymmetric): c = (max x - min x) / 255 and z chosen so that min x maps to
  -128, using all 256 codes for a skewed range (the idea of LLM.int8()'s zeropoint
  quantization, Sec. 2.1; our codes span [-128, 127]).
* **vector-wise**: one scale per row (per column for the right matrix of a matmul), so each
  inner product gets its own pair of constants (Sec. 3.1).
* **mixed-precision decomposition**: the feature dimensions (columns of the hidden states X)
  holding any |x| >= α (α = 6.0 in the paper, Sec. 3.2) are multiplied in 16 bits; all other
  dimensions in int8 (Sec. 3.2).

Lecture ``003_f67430602ab4012b.txt`` ("Quantization: INT8"; "8-bit quantized model: 1GB @ 8-bit
precision" for 1B parameters). Units: scales are floats per unit of the code; errors are in the
units of x.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from labutils.validate import integer, positive

INT8_MAX = 127  # absmax maps max|x| to ±127 (the code -128 is left unused, as in the paper)
LLM_INT8_THRESHOLD = 6.0  # α of Dettmers et al. 2022, Sec. 3.2


@dataclass(frozen=True)
class Quantized:
    """int8 codes with their scale and zero-point: x ≈ (q - zero_point) · scale.

    ``scale`` and ``zero_point`` are 0-d (per tensor) or keep the reduced dimension with size 1
    (per row: shape (rows, 1); per column: (1, cols)), so they broadcast against ``q``.
    """

    q: torch.Tensor  # int8 codes, shape of x
    scale: torch.Tensor  # float32
    zero_point: torch.Tensor  # int32 (zeros for absmax)

    def dequantize(self) -> torch.Tensor:
        """The float32 values the codes stand for."""
        return (self.q.to(torch.float32) - self.zero_point.to(torch.float32)) * self.scale

    def error_bound(self) -> torch.Tensor:
        """Worst-case |x - dequantize()| for values inside the range: half a step, scale / 2."""
        return self.scale / 2


def _check(x: object, name: str = "x") -> torch.Tensor:
    """``x`` as float32 if it is a non-empty, finite floating-point tensor; else an error naming
    ``name``."""
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0 or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be non-empty and finite")
    return x.to(torch.float32)


def _matmul_operands(a: object, b: object, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two finite float matrices (n, k) and (k, m); else an error naming the bad one."""
    a, b = _check(a, names[0]), _check(b, names[1])
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"{names[0]} (n, k) and {names[1]} (k, m) must be matrices with matching "
                         f"k, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return value


def _reduce(x: torch.Tensor, op: str, dim: int | None) -> torch.Tensor:
    if dim is None:
        return getattr(x, op)()
    if not isinstance(dim, int) or isinstance(dim, bool) or not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim must be None or an int in [{-x.ndim}, {x.ndim - 1}], got {dim!r}")
    return getattr(x, op)(dim=dim, keepdim=True).values


def absmax_quantize(x: torch.Tensor, dim: int | None = None) -> Quantized:
    """Symmetric int8 quantization: scale = max|x| / 127, q = round(x / scale).

    ``dim=None``: one scale for the whole tensor; ``dim=1`` on a matrix: one scale per row
    (the max is taken along ``dim``); ``dim=0``: one per column.
    """
    x = _check(x)
    absmax = _reduce(x.abs(), "max", dim)
    scale = torch.where(absmax > 0, absmax / INT8_MAX, torch.ones_like(absmax))  # all-zero: any
    q = torch.round(x / scale).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return Quantized(q, scale, torch.zeros_like(scale, dtype=torch.int32))


def zeropoint_quantize(x: torch.Tensor, dim: int | None = None) -> Quantized:
    """Asymmetric int8 quantization: 255 steps of ``scale`` = (max - min)/255 from min to max.

    zero_point = round(-128 - min/scale), so min → -128 and max → 127 exactly (round-half-even
    is symmetric, so the two roundings cancel and no code is ever clamped).
    """
    x = _check(x)
    lo, hi = _reduce(x, "min", dim), _reduce(x, "max", dim)
    scale = torch.where(hi > lo, (hi - lo) / 255, torch.ones_like(hi))
    zero_point = torch.round(-128 - lo / scale)
    q = (torch.round(x / scale) + zero_point).clamp(-128, 127).to(torch.int8)
    return Quantized(q, scale, zero_point.to(torch.int32))


def absmax_error_bound(absmax: float, bits: int = 8) -> float:
    """Worst-case rounding error of absmax quantization of values up to ``absmax``: half a step,
    absmax / (2 · (2^(bits-1) - 1)) (absmax/254 for int8)."""
    a = positive("absmax", absmax)
    b = integer("bits", bits, 2, 32)
    return a / (2 * (2 ** (b - 1) - 1))


def quantization_error(x: torch.Tensor, qt: Quantized) -> dict[str, float]:
    """Measured errors of ``qt`` against the original ``x``: max and mean absolute error,
    relative Frobenius error ||x - x̂|| / ||x||, and the largest error over its bound scale/2."""
    x = _check(x)
    if not isinstance(qt, Quantized):
        raise TypeError(f"qt must be a Quantized (from absmax_quantize or zeropoint_quantize), "
                        f"got {type(qt).__name__}")
    if qt.q.shape != x.shape:
        raise ValueError(f"qt must quantize a tensor of x's shape {tuple(x.shape)}, "
                         f"got {tuple(qt.q.shape)}")
    err = (x - qt.dequantize()).abs()
    return {"max_abs": float(err.max()), "mean_abs": float(err.mean()),
            "relative": float(err.norm() / x.norm()),
            "max_over_bound": float((err / qt.error_bound()).max())}


def int8_matmul(a: torch.Tensor, b: torch.Tensor, *, vector_wise: bool = True) -> torch.Tensor:
    """a @ b with both operands absmax-quantized to int8 and accumulated in int32.

    ``a`` (n, k), ``b`` (k, m). Vector-wise (Dettmers et al. 2022, Sec. 3.1): one scale
    per row of ``a`` and per column of ``b``, so C ≈ (q_a @ q_b) · c_a c_bᵀ (outer product of
    the scales). ``vector_wise=False``: one scale per tensor. Returns float32 (n, m).
    """
    a, b = _matmul_operands(a, b, ("a", "b"))
    vector_wise = _flag("vector_wise", vector_wise)
    qa = absmax_quantize(a, dim=1 if vector_wise else None)  # scale (n, 1) or ()
    qb = absmax_quantize(b, dim=0 if vector_wise else None)  # scale (1, m) or ()
    acc = qa.q.to(torch.int32) @ qb.q.to(torch.int32)  # (n, m) exact int32 sums
    return acc.to(torch.float32) * qa.scale * qb.scale


def outlier_columns(x: torch.Tensor, threshold: float = LLM_INT8_THRESHOLD) -> torch.Tensor:
    """Feature dimensions (columns of x, shape (n, k)) holding any |value| >= ``threshold``:
    a bool tensor of shape (k,)."""
    x = _check(x)
    t = positive("threshold", threshold)
    return (x.abs() >= t).any(dim=0)


def llm_int8_matmul(x: torch.Tensor, w: torch.Tensor,
                    threshold: float = LLM_INT8_THRESHOLD) -> torch.Tensor:
    """LLM.int8(): x @ w with the outlier dimensions in fp16 and the rest vector-wise int8.

    ``x`` (n, k) hidden states, ``w`` (k, m) weights. Columns of x with any |value| >=
    ``threshold`` and the matching rows of w are multiplied in fp16 (Dettmers et al. 2022,
    Sec. 3.2); the other k - |O| dimensions go through :func:`int8_matmul`.
    """
    x, w = _matmul_operands(x, w, ("x", "w"))
    outliers = outlier_columns(x, threshold)  # (k,)
    out = torch.zeros(x.shape[0], w.shape[1], dtype=torch.float32)
    if bool(outliers.any()):
        out += (x[:, outliers].half() @ w[outliers, :].half()).float()  # 16-bit part
    if bool((~outliers).any()):
        out += int8_matmul(x[:, ~outliers], w[~outliers, :])  # 8-bit part
    return out


def relative_matmul_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """||approx - exact||_F / ||exact||_F (two finite float tensors of one shape, exact != 0)."""
    approx, exact = _check(approx, "approx"), _check(exact, "exact")
    if approx.shape != exact.shape:
        raise ValueError(f"approx and exact must have the same shape, got {tuple(approx.shape)} "
                         f"and {tuple(exact.shape)}")
    if not bool(exact.ne(0).any()):
        raise ValueError("exact must have a non-zero entry (its norm is the denominator)")
    return float((approx - exact).norm() / exact.norm())


# ---------------------------------------------------------------------------------------------
# Quantization-aware training (QAT): fake quantization with a straight-through estimator.
# Lecture 3, COMSE6998 *Lecture 9* ("Quantization: Summary"): "Quantization-aware training (QAT)
# learns the quantization scaling factors during training." The forward pass sees quantized
# weights; the backward pass treats rounding as the identity (the straight-through estimator,
# Bengio et al. 2013), and the scale gets its own gradient, as in learned step size quantization
# (LSQ, Esser et al. 2020, without its gradient-scale factor).
# ---------------------------------------------------------------------------------------------


def max_code(bits: int) -> int:
    """Largest code of symmetric ``bits``-bit quantization, 2^(bits-1) - 1 (127 for int8): codes
    run from -max_code to +max_code, 2^bits - 1 levels."""
    return 2 ** (integer("bits", bits, 2, 16) - 1) - 1


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass; gradient 1 (the identity) in the backward pass."""
    return x + (torch.round(x) - x).detach()


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric fake quantization: clamp(round(x / scale), ±max_code) · scale, kept in float.

    ``scale`` broadcasts against ``x`` (a 0-d tensor per tensor, (rows, 1) per row). Gradients:
    d/dx is 1 where |x / scale| <= max_code and 0 where the value is clipped (straight-through
    estimator); d/dscale flows through both the division and the multiplication (LSQ).
    """
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not isinstance(scale, torch.Tensor) or not bool((scale > 0).all()):
        raise ValueError("scale must be a torch.Tensor of positive values")
    q_max = max_code(bits)
    return torch.clamp(round_ste(x / scale), -q_max, q_max) * scale


class FakeQuantWeight(torch.nn.Module):
    """A parametrization (``torch.nn.utils.parametrize``) that fake-quantizes a weight matrix
    per row with a learnable scale, initialised to absmax / max_code (absmax quantization)."""

    def __init__(self, weight: torch.Tensor, bits: int, learn_scale: bool = True) -> None:
        super().__init__()
        self.bits = bits
        absmax = weight.detach().abs().amax(dim=1, keepdim=True)  # (rows, 1)
        scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax)) / max_code(bits)
        if _flag("learn_scale", learn_scale):
            self.scale = torch.nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.scale.abs().clamp_min(1e-12), self.bits)


def add_fake_quant(module: torch.nn.Module, bits: int, learn_scale: bool = True) -> list[str]:
    """Make every ``nn.Linear`` weight inside ``module`` fake-quantized (in place); return their
    names. Training the module afterwards is QAT; evaluating it right away is post-training
    quantization (PTQ) with per-row absmax scales.
    """
    from torch.nn.utils import parametrize

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    max_code(bits)
    names = []
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Linear) and not parametrize.is_parametrized(sub, "weight"):
            parametrize.register_parametrization(
                sub, "weight", FakeQuantWeight(sub.weight, bits, learn_scale))
            names.append(f"{name}.weight" if name else "weight")
    return names
