"""Assignment 10_mup: the lecture's muP table for one layer, the coordinate check's verdict, and
the napkin math of transferring a proxy's hyperparameters (chapter 10)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "10_mup"
TITLE = "muP: transferring hyperparameters across width"


def cells():
    return [
        md(f"""
# Assignment 10: {TITLE}

Chapter 10 (`notebooks/10_mup.ipynb`) writes the maximal-update parametrization (muP) as a
table of per-layer init stds, multipliers and learning rates, and runs the coordinate check:
train the same GPT at several widths and ask whether any activation grows with width. Here you
rewrite that table in an equivalent form the package does not hold, write the check's verdict
yourself, then transfer **your** proxy's
hyperparameters to a wider target on the back of an envelope.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: the muP table with fixed init stds (4 points)

A proxy of width `n_base` (its `d_model`) was tuned: every layer starts from init std σ, the
AdamW learning rate is η, and the readout (the LM head) multiplies its logits by a tunable
α_out. The target has width `n`, so the **width ratio** is ñ = n / n_base, and it trains with
b̃ = B / B_base times the proxy's batch. The lecture's table ("Main Table", after Tensor
Programs IV and V) gives each kind of layer of a target with `n_layers` blocks:

| layer kind | what it is | init std | multiplier | AdamW LR |
|---|---|---|---|---|
| `"embedding"` | token and position tables, biases, norm gains | σ | 1 | η · b̃^(1/2) |
| `"hidden"` | Q, K, V, the MLP's up matrix | σ · ñ^(−1/2) | 1 | η · ñ^(−1) · b̃^(1/2) |
| `"residual_out"` | attention output, MLP down matrix | σ · ñ^(−1/2) · (2 · n_layers)^(−1/2) | 1 | η · ñ^(−1) · b̃^(1/2) |
| `"readout"` | the LM head | σ | α_out · ñ^(−1) | η · b̃^(1/2) |

(No zero initialisations, no data-size correction, the embedding's own multiplier α_in = 1.)

**Your task is a variant the package does not hold: the same table, written differently.**
A layer computes `multiplier · (W x)` and trains W with Adam. Tensor Programs V's
**abc symmetry** (Yang et al. 2022, Sec. 3; chapter 10, `labutils.mup.abc_shift`) says that for
any θ > 0 the triple (multiplier, init std, LR) → (multiplier · θ, init std / θ, LR / θ)
trains exactly the same network under Adam (ε = 0): the product multiplier · W and every update
to it are unchanged. Use it to rewrite the table so that **every layer keeps the proxy's init
std at every width**: σ for `"embedding"`, `"hidden"` and `"readout"`, and
σ · (2 · n_layers)^(−1/2) for `"residual_out"`, whatever ñ is. Choose θ per layer so that the
init std comes back to that value, and shift the multiplier and the LR with it.

Implement `mup_layer_fixed_init(kind, width_ratio, n_layers, sigma, eta, alpha_out=1.0,
batch_ratio=1.0)` returning the tuple `(init_std, multiplier, lr)` of a layer of kind `kind`
(one of the four strings above) in this form, for ñ = `width_ratio`, b̃ = `batch_ratio`,
σ = `sigma`, η = `eta`. Return Python floats.
"""),
        solution("table_impl", '''
def mup_layer_fixed_init(kind, width_ratio, n_layers, sigma, eta, alpha_out=1.0, batch_ratio=1.0):
    """(init_std, multiplier, lr) of the muP table after an abc shift that keeps every init std
    at the proxy's value."""
    ### BEGIN SOLUTION
    grows_both_ways = kind in ("hidden", "residual_out")
    depth_factor = 1 / math.sqrt(2 * n_layers) if kind == "residual_out" else 1.0
    init_std = sigma * depth_factor
    theta = 1 / math.sqrt(width_ratio) if grows_both_ways else 1.0  # table std / kept std
    table_mult = alpha_out / width_ratio if kind == "readout" else 1.0
    table_lr = eta * math.sqrt(batch_ratio) / (width_ratio if grows_both_ways else 1.0)
    return float(init_std), float(table_mult * theta), float(table_lr / theta)
    ### END SOLUTION
'''),
        tests("table_tests", 4, '''
# Public tests: at the proxy's own width (ñ = 1) nothing shifts; at 4x the width a hidden matrix
# keeps σ, and its multiplier 1/2 and LR η/4 · 2 = η/2 carry the width instead.
assert tuple(mup_layer_fixed_init("hidden", 1.0, 12, 0.02, 1e-2)) == (0.02, 1.0, 1e-2)
_std, _mult, _lr = mup_layer_fixed_init("hidden", 4.0, 12, 0.02, 1e-2)
assert abs(_std - 0.02) < 1e-15 and abs(_mult - 0.5) < 1e-15 and abs(_lr - 5e-3) < 1e-15
_std, _mult, _lr = mup_layer_fixed_init("residual_out", 4.0, 12, 0.02, 1e-2)
assert abs(_std - 0.02 / 24**0.5) < 1e-15 and abs(_mult - 0.5) < 1e-15
assert abs(mup_layer_fixed_init("readout", 4.0, 12, 0.02, 1e-2, alpha_out=2.0)[1] - 0.5) < 1e-15
assert abs(mup_layer_fixed_init("embedding", 4.0, 12, 0.02, 1e-2, batch_ratio=4.0)[2] - 2e-2) < 1e-15
### BEGIN HIDDEN TESTS
import random as _random
from labutils.mup import LAYER_KINDS as _KINDS, OptimizerHyperparams as _Opt
from labutils.mup import layer_hyperparams as _ref_layer, mup as _ref_mup
from variants import mup_layer_multiplier_form as _ref_form
_rng = _random.Random(101)
for _base, _width in ((64, 64), (64, 256), (256, 4096), (128, 1000), (512, 12288), (100, 133)):
    for _L in (1, 12, 48, 126):
        for _sigma, _eta, _aout, _b in ((0.02, 1e-2, 1.0, 1.0), (0.05, 3e-3, 4.0, 8.0),
                                        (1.0, 0.5, 0.1, 0.25), (0.0625, 2e-2, 10.0, 2.0)):
            _param = _ref_mup(_base, 16, init_std=_sigma, output_mult=_aout, zero_init=False)
            _opt = _Opt(lr=_eta, batch_ratio=_b)
            for _kind in _KINDS:
                _got = tuple(mup_layer_fixed_init(_kind, _width / _base, _L, _sigma, _eta, alpha_out=_aout, batch_ratio=_b))
                assert len(_got) == 3, "return (init_std, multiplier, lr)"
                _want = _ref_form(_kind, _width / _base, _L, _sigma, _eta, _aout, _b)
                for _g, _w, _what in zip(_got, _want, ("init_std", "multiplier", "lr")):
                    assert abs(_g - _w) <= 1e-9 * abs(_w), f"{_what} wrong for {_kind!r} (ñ={_width / _base:g}, L={_L}, b̃={_b})"
                # the same network as the lecture's table: multiplier·std and multiplier·lr agree
                _row = _ref_layer(_kind, _param, _width, _L, _opt)
                assert abs(_got[1] * _got[0] - _row.multiplier * _row.init_std) <= 1e-9 * _row.multiplier * _row.init_std, \
                    f"multiplier · init std differs from the table's for {_kind!r}"
                assert abs(_got[1] * _got[2] - _row.multiplier * _row.lr) <= 1e-9 * _row.multiplier * _row.lr, \
                    f"multiplier · LR differs from the table's for {_kind!r}"
for _ in range(30):
    _r, _L = 10 ** _rng.uniform(0, 3), _rng.randint(1, 200)
    for _kind in ("embedding", "hidden", "residual_out", "readout"):
        _args = (_kind, _r, _L, _rng.uniform(0.001, 1), 10 ** _rng.uniform(-4, -1), _rng.uniform(0.1, 10), _rng.uniform(0.25, 8))
        _got, _want = mup_layer_fixed_init(*_args), _ref_form(*_args)
        assert all(abs(_g - _w) <= 1e-9 * abs(_w) for _g, _w in zip(_got, _want)), f"wrong for {_kind!r} at ñ={_r:g}"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: the coordinate check's verdict (2 points)

The coordinate check trains the model at several widths and records, for each activation, the
mean absolute value of a coordinate (its *magnitude*) at each width. If the parametrization is
right for width, the magnitude does not depend on width; under GPT-2's standard
parametrization the hidden activations and logits grow about like the width itself. The
verdict is a slope: fit `log(magnitude) = s · log(width) + c` by least squares,

`s = Σ (x_i − x̄)(y_i − ȳ) / Σ (x_i − x̄)²`, with `x_i = log(width_i)`, `y_i = log(magnitude_i)`
and `x̄`, `ȳ` their means. A slope of +1 means the activation doubles when the width doubles.

Implement:

* `slope(widths, magnitudes)`: the least-squares slope `s` of one curve (two lists of the same
  length ≥ 2; widths distinct and positive, magnitudes positive), as a Python float;
* `passes(slopes, max_abs_slope=0.5)`: `True` when every slope in the list (finite numbers)
  has |s| ≤ `max_abs_slope`, else `False`. (The chapter's default 0.5 lets a coordinate grow at
  most like √width: room for the noise of a few seeds on small models.)
"""),
        solution("slope_impl", '''
def slope(widths, magnitudes):
    """Least-squares slope of log(magnitude) on log(width)."""
    ### BEGIN SOLUTION
    xs = [math.log(w) for w in widths]
    ys = [math.log(m) for m in magnitudes]
    x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
    num = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys))
    den = sum((x - x_mean) ** 2 for x in xs)
    return num / den
    ### END SOLUTION


def passes(slopes, max_abs_slope=0.5):
    """True when every |slope| is at most max_abs_slope."""
    ### BEGIN SOLUTION
    return all(abs(s) <= max_abs_slope for s in slopes)
    ### END SOLUTION
'''),
        tests("slope_tests", 2, '''
# Public tests: exact power laws have their exponent as slope; a flat curve has slope 0.
assert abs(slope([64, 128, 256, 512], [1.0, 2.0, 4.0, 8.0]) - 1.0) < 1e-12
assert abs(slope([64, 128, 256], [0.3, 0.3, 0.3])) < 1e-12
assert passes([0.1, -0.45, 0.0]) and not passes([0.1, 0.9]) and not passes([-0.5], 0.4)
assert passes([0.4, -0.4], 0.4), "a slope exactly at the threshold passes"
### BEGIN HIDDEN TESTS
import numpy as _np
from labutils.coord_check import CoordCheck as _Check, CoordCheckConfig as _Cfg
from labutils.coord_check import judge as _ref_judge, width_slopes as _ref_slopes
from labutils.mup import mup as _ref_mup
_rng = _np.random.default_rng(10)
for _ws in ((64, 128, 256, 512), (100, 300, 1000), (64, 96, 128, 192, 256, 4096), (7, 9)):
    for _s in (-1.0, -0.5, 0.0, 0.5, 1.0):
        assert abs(slope(list(_ws), [3.0 * _w**_s for _w in _ws]) - _s) < 1e-9, f"slope of w^{_s} is not {_s}"
    for _ in range(20):
        _m = _np.exp(2.0 * _rng.normal(size=len(_ws)))
        _want = float(_ref_slopes(_ws, _m[None, :])[0])
        _got = slope(list(_ws), [float(_v) for _v in _m])
        assert abs(_got - _want) <= 1e-9 * max(1.0, abs(_want)), f"wrong slope for widths {_ws}"
_cfg = _Cfg(widths=(64, 128, 256, 512), steps=4)
_logw = _np.log(_np.array(_cfg.widths, dtype=float))
for _ in range(40):
    _mags = {_tap: _np.exp(_rng.uniform(-1.2, 1.2, size=(4, 1)) * _logw + 0.05 * _rng.normal(size=(4, 4)))
             for _tap in ("embedding", "attn_out", "readout")}
    _check = _Check(config=_cfg, parametrization=_ref_mup(64, 16), magnitude=_mags,
                    losses=_np.zeros((4, 4)))
    _all = [float(_v) for _row in _check.slopes().values() for _v in _row]
    assert bool(passes(_all)) == _ref_judge(_check, 0.5, from_step=0).passed, "wrong verdict at the default 0.5"
    for _t in (0.4, 1.0, 0.9 * max(abs(_v) for _v in _all), 1.1 * max(abs(_v) for _v in _all)):
        assert bool(passes(_all, _t)) == _ref_judge(_check, _t, from_step=0).passed, f"wrong verdict at max_abs_slope={_t:g}"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math: transfer your proxy (6 points)

You tuned a proxy of width `PARAMS["base_width"]` at `PARAMS["base_batch_tokens"]` tokens per
step: every layer starts from init std σ = `PARAMS["init_std"]`, the best AdamW LR is
η = `PARAMS["lr"]`, the readout multiplier α_out = `PARAMS["output_mult"]`, and Adam runs with
β2 = `PARAMS["beta2"]` and ε = `PARAMS["eps"]`. Your target has width `PARAMS["width"]` and
trains at `PARAMS["batch_tokens"]` tokens per step (same depth, no zero inits, no data-size
correction). Follow the lecture's table (Part 1), and for Adam after the batch change:
β → 1 − b̃ · (1 − β) and ε → ε · b̃^(−1/2).

Answers within 2 % get full marks (β2 within 0.1 %: it is close to 1).

* `answer_hidden_lr`: the AdamW learning rate of the target's hidden matrices;
* `answer_hidden_init_std`: the init std of the target's hidden matrices;
* `answer_readout_mult`: the target's readout multiplier;
* `answer_beta2`: the target's Adam β2;
* `answer_eps`: the target's Adam ε;
* `answer_crossover_width`: the width n at which a constant init std of `PARAMS["const_std"]`
  equals 1/√n, the std that keeps a matrix's output Θ(1) (GPT-2 hard-codes 0.02, right only
  near one width and too large beyond it).
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_n = PARAMS["width"] / PARAMS["base_width"]  # ñ
_b = PARAMS["batch_tokens"] / PARAMS["base_batch_tokens"]  # b̃
answer_hidden_lr = PARAMS["lr"] / _n * _b**0.5
answer_hidden_init_std = PARAMS["init_std"] / _n**0.5
answer_readout_mult = PARAMS["output_mult"] / _n
answer_beta2 = 1 - _b * (1 - PARAMS["beta2"])
answer_eps = PARAMS["eps"] / _b**0.5
answer_crossover_width = 1 / PARAMS["const_std"] ** 2
### END SOLUTION
print(f"hidden LR {answer_hidden_lr:.3g}, hidden init std {answer_hidden_init_std:.3g}, "
      f"readout multiplier {answer_readout_mult:.3g}")
print(f"Adam beta2 {answer_beta2:.4g}, eps {answer_eps:.3g}; "
      f"a constant std of {PARAMS['const_std']} is 1/sqrt(n) at n = {answer_crossover_width:,.0f}")
'''),
        tests("napkin_lr", 1, '''
assert isinstance(answer_hidden_lr, (int, float)) and 0 < answer_hidden_lr < PARAMS["lr"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "hidden_lr", answer_hidden_lr, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_init", 1, '''
assert isinstance(answer_hidden_init_std, (int, float))
assert 0 < answer_hidden_init_std < PARAMS["init_std"], "a wider hidden matrix starts smaller"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "hidden_init_std", answer_hidden_init_std, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_readout", 1, '''
assert isinstance(answer_readout_mult, (int, float)) and 0 < answer_readout_mult < PARAMS["output_mult"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "readout_mult", answer_readout_mult, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_beta2", 1, '''
assert isinstance(answer_beta2, (int, float)) and 0 < answer_beta2 < 1
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "beta2", answer_beta2, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_eps", 1, '''
assert isinstance(answer_eps, (int, float)) and answer_eps > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "eps", answer_eps, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_width", 1, '''
assert isinstance(answer_crossover_width, (int, float)) and answer_crossover_width > 1
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "crossover_width", answer_crossover_width, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
