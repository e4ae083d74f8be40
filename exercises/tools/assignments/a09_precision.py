"""Assignment 09_precision: float formats from their bits, absmax INT8, and precision napkin math
(chapter 9)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "09_precision"
TITLE = "Mixed precision and quantization"


def cells():
    return [
        md(f"""
# Assignment 09: {TITLE}

Chapter 9 (`notebooks/09_precision.ipynb`) derives every float format's range and precision
from its exponent and mantissa bits, trains the tiny GPT in fp16 with and without loss scaling,
and quantizes tensors to INT8. Here you derive the format limits yourself, write absmax INT8
quantization, and do the napkin math of precision for **your** model.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT, "import torch\n"),
        md("""
## Part 1: a float format's limits from its bits (4 points)

An IEEE-style binary float has 1 sign bit, `e` exponent bits and `m` mantissa (fraction) bits.
The exponent bias is 2^(e−1) − 1. The exponent field 0 is reserved for zero and subnormals and
the all-ones field for ±inf and NaN; a normal number is 1.f · 2^(E − bias) for the fields
E = 1 … 2^e − 2.

Implement, for such a format (with infinities, as fp32, fp16, bf16 and FP8 E5M2 are):

* `float_max(e, m)`: the largest finite value;
* `float_eps(e, m)`: machine epsilon, the gap between 1.0 and the next larger value;
* `float_smallest_normal(e, m)`: the smallest positive normal value.

Return Python floats.
"""),
        solution("formats_impl", '''
def float_max(e, m):
    """Largest finite value of an IEEE-style format with e exponent and m mantissa bits."""
    ### BEGIN SOLUTION
    bias = 2 ** (e - 1) - 1
    return (2 - 2.0 ** -m) * 2.0 ** (2**e - 2 - bias)
    ### END SOLUTION


def float_eps(e, m):
    """Gap between 1.0 and the next representable value."""
    ### BEGIN SOLUTION
    return 2.0 ** -m
    ### END SOLUTION


def float_smallest_normal(e, m):
    """Smallest positive normal value."""
    ### BEGIN SOLUTION
    bias = 2 ** (e - 1) - 1
    return 2.0 ** (1 - bias)
    ### END SOLUTION
'''),
        tests("formats_tests", 4, '''
# Public tests: fp16 (e=5, m=10) against torch.finfo.
_fi = torch.finfo(torch.float16)
assert float_max(5, 10) == _fi.max == 65504.0
assert float_eps(5, 10) == _fi.eps
assert float_smallest_normal(5, 10) == _fi.smallest_normal
### BEGIN HIDDEN TESTS
from labutils import precision as _P
for _e in range(2, 12):
    for _m in range(1, 24):
        _fmt = _P.FloatFormat("t", _e, _m, 64, True, "test")
        assert abs(float_max(_e, _m) - _P.max_finite(_fmt)) <= 1e-12 * _P.max_finite(_fmt), f"float_max wrong for e={_e}, m={_m}"
        assert float_eps(_e, _m) == _P.machine_epsilon(_fmt), f"float_eps wrong for m={_m}"
        assert abs(float_smallest_normal(_e, _m) - _P.smallest_normal(_fmt)) <= 1e-12 * _P.smallest_normal(_fmt), f"float_smallest_normal wrong for e={_e}"
for _name in ("fp32", "bf16", "fp8_e5m2"):
    _fi = torch.finfo(_P.TORCH_DTYPES[_name])
    _f = _P.get_format(_name)
    assert float_max(_f.exponent_bits, _f.mantissa_bits) == _fi.max, _name
### END HIDDEN TESTS
'''),
        md("""
## Part 2: absmax INT8 quantization (2 points)

Absmax quantization (Dettmers et al. 2022, Sec. 2.1) maps a tensor `x` to int8 codes with one
scale: `scale = max|x| / 127`, `q = round(x / scale)` (so the codes lie in −127 … 127), and
back: `x̂ = q · scale`.

Implement `absmax_int8(x)` returning `(q, scale)`: `q` a `torch.int8` tensor of the shape of
`x`, `scale` a Python float; and `dequantize_int8(q, scale)` returning a float32 tensor. `x` is
a float tensor with at least one non-zero value.
"""),
        solution("int8_impl", '''
def absmax_int8(x):
    """(int8 codes, scale) of x with one absmax scale for the whole tensor."""
    ### BEGIN SOLUTION
    scale = float(x.abs().max()) / 127
    q = torch.round(x / scale).clamp(-127, 127).to(torch.int8)
    return q, scale
    ### END SOLUTION


def dequantize_int8(q, scale):
    """The float32 values the codes stand for."""
    ### BEGIN SOLUTION
    return q.to(torch.float32) * scale
    ### END SOLUTION
'''),
        tests("int8_tests", 2, '''
# Public tests: the largest magnitude maps to ±127, and the round trip is close.
_q, _s = absmax_int8(torch.tensor([-2.0, 0.5, 1.0]))
assert _q.dtype == torch.int8 and _q.tolist() == [-127, 32, 64]
assert abs(_s - 2 / 127) < 1e-9
assert torch.allclose(dequantize_int8(_q, _s), torch.tensor([-2.0, 0.5, 1.0]), atol=_s / 2)
### BEGIN HIDDEN TESTS
from labutils import quantization as _Q
_g = torch.Generator().manual_seed(9)
for _shape, _mult in (((1000,), 1.0), ((64, 128), 0.02), ((7, 3), 300.0)):
    _x = torch.randn(*_shape, generator=_g) * _mult
    _q, _s = absmax_int8(_x)
    _ref = _Q.absmax_quantize(_x)
    assert _q.dtype == torch.int8 and _q.shape == _x.shape, "q must be int8 with the shape of x"
    assert abs(_s - float(_ref.scale)) <= 1e-6 * float(_ref.scale), "wrong scale"
    assert int((_q.int() - _ref.q.int()).abs().max()) <= 1, "codes differ from round(x / scale)"
    assert float((_q.int() != _ref.q.int()).float().mean()) < 1e-3, "codes differ from round(x / scale)"
    _err = (dequantize_int8(_q, _s) - _x).abs()
    assert dequantize_int8(_q, _s).dtype == torch.float32
    assert float(_err.max()) <= _s / 2 * (1 + 1e-4), "error above scale/2"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math of precision (6 points)

Your model has `PARAMS["n_params"]` parameters and is trained with the recipe
`PARAMS["recipe"]`, one of chapter 4's recipes (`labutils.memory.RECIPES`):

| recipe | weights | gradients | optimizer state | bytes per parameter |
|---|---|---|---|---|
| `fp32_adam` | 4 | 4 | 8 (Adam's m and v) | 16 |
| `mixed_adam` | 2 | 2 | 12 (fp32 master, m, v) | 16 |
| `sgd_momentum` | 4 | 4 | 4 (momentum) | 12 |

GB = 1e9 bytes; answers within 2 % get full marks (the loss scale must be exact).

* `answer_train_state_gb`: the model-state memory (weights + gradients + optimizer state, no
  activations, no sharding) of your model under your recipe, in GB;
* `answer_loss_scale`: the smallest **power of two** S such that a gradient of magnitude
  `PARAMS["grad"]`, multiplied by S, reaches fp16's smallest normal value 2^−14 (S = 1 if it
  already does);
* `answer_int8_error`: the worst-case absolute rounding error of absmax INT8 quantization
  (Part 2) of a weight row whose largest magnitude is `PARAMS["absmax"]`.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_bytes_per_param = {"fp32_adam": 16, "mixed_adam": 16, "sgd_momentum": 12}[PARAMS["recipe"]]
answer_train_state_gb = PARAMS["n_params"] * _bytes_per_param / 1e9
answer_loss_scale = 2.0 ** max(0, math.ceil(math.log2(2.0**-14 / PARAMS["grad"])))
answer_int8_error = PARAMS["absmax"] / 127 / 2
### END SOLUTION
print(f"model states {answer_train_state_gb:,.1f} GB, loss scale {answer_loss_scale:,.0f}, "
      f"INT8 error <= {answer_int8_error:.3g}")
'''),
        tests("napkin_memory", 2, '''
assert isinstance(answer_train_state_gb, (int, float)) and answer_train_state_gb > 0
assert answer_train_state_gb >= 8 * PARAMS["n_params"] / 1e9 * 0.98, "weights and gradients alone take 8 bytes per parameter here"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "train_state_gb", answer_train_state_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_scale", 2, '''
assert isinstance(answer_loss_scale, (int, float)) and answer_loss_scale >= 1
assert math.log2(answer_loss_scale) == int(math.log2(answer_loss_scale)), "S must be a power of two"
assert PARAMS["grad"] * answer_loss_scale >= 2.0**-14, "g · S must reach 2^-14"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "loss_scale", answer_loss_scale, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_int8", 2, '''
assert isinstance(answer_int8_error, (int, float)) and 0 < answer_int8_error < PARAMS["absmax"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "int8_error", answer_int8_error, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
