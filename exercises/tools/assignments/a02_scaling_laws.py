"""Assignment 02_scaling_laws: Chinchilla's law and its compute-optimal allocation (chapter 2)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "02_scaling_laws"
TITLE = "Scaling laws: the compute-optimal model"


def cells():
    return [
        md(f"""
# Assignment 02: {TITLE}

Chapter 2 (`notebooks/02_scaling_laws.ipynb`) fits L(N, D) = E + A/N^α + B/D^β (Hoffmann et
al. 2022, "Chinchilla") and derives the compute-optimal model size for a budget of C = 6·N·D
FLOPs. Here you implement the law and its closed form, then size a model for **your** budget.
{RULES}
Points: Part 1 (2), Part 2 (4), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: the parametric loss (2 points)

Implement `chinchilla_loss(N, D, E, A, B, alpha, beta)`: the predicted loss (nats/token) of a
model with N parameters trained on D tokens, L = E + A/N^α + B/D^β.
"""),
        solution("loss_impl", '''
def chinchilla_loss(N, D, E, A, B, alpha, beta):
    """Hoffmann et al. 2022, Eq. 2: predicted loss in nats/token."""
    ### BEGIN SOLUTION
    return E + A / N**alpha + B / D**beta
    ### END SOLUTION
'''),
        tests("loss_tests", 2, '''
# Public tests: with infinite model and data the loss tends to E; Chinchilla itself (70B
# parameters, 1.4T tokens) is predicted near 1.94 nats/token with the paper's constants.
_hoff = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, Eq. 10
assert abs(chinchilla_loss(1e30, 1e30, **_hoff) - 1.69) < 1e-4
assert abs(chinchilla_loss(70e9, 1.4e12, **_hoff) - 1.937) < 0.01
### BEGIN HIDDEN TESTS
import random as _random
from labutils.scaling import ChinchillaLaw as _Law
_rng = _random.Random(3)
for _ in range(30):
    _k = dict(E=_rng.uniform(0, 3), A=_rng.uniform(50, 3000), B=_rng.uniform(50, 3000),
              alpha=_rng.uniform(0.1, 0.6), beta=_rng.uniform(0.1, 0.6))
    _N, _D = 10 ** _rng.uniform(6, 12), 10 ** _rng.uniform(8, 14)
    _ref = _Law(**_k).loss(_N, _D)
    assert abs(chinchilla_loss(_N, _D, **_k) - _ref) <= 1e-9 * _ref, "wrong loss"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: the compute-optimal allocation (4 points)

Minimising L(N, D) subject to C = 6·N·D gives a closed form (Hoffmann et al. 2022, Eq. 4):

G = (α·A / (β·B))^(1/(α+β)),  N_opt = G · (C/6)^(β/(α+β)),  D_opt = C / (6·N_opt).

Implement `compute_optimal(C, E, A, B, alpha, beta)` returning the tuple `(N_opt, D_opt)`.
"""),
        solution("optimal_impl", '''
def compute_optimal(C, E, A, B, alpha, beta):
    """(N_opt, D_opt) minimising the loss under C = 6·N·D FLOPs."""
    ### BEGIN SOLUTION
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = G * (C / 6.0) ** (beta / (alpha + beta))
    return n_opt, C / (6.0 * n_opt)
    ### END SOLUTION
'''),
        tests("optimal_tests", 4, '''
# Public tests: the allocation spends the whole budget, and no nearby split does better.
_hoff = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
_N, _D = compute_optimal(5.76e23, **_hoff)  # Gopher's budget (Hoffmann et al. 2022, Sec. 4)
assert abs(6 * _N * _D / 5.76e23 - 1) < 1e-9
_loss = lambda N, D: 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28  # noqa: E731 (the law of Part 1)
for _f in (0.8, 1.25):
    assert _loss(_N * _f, _D / _f) > _loss(_N, _D)
### BEGIN HIDDEN TESTS
import random as _random
from labutils.scaling import BESIROGLU_2024 as _B24, HOFFMANN_2022 as _H22, ChinchillaLaw as _Law
_rng = _random.Random(4)
_laws = [_H22, _B24] + [_Law(E=1.0, A=_rng.uniform(50, 3000), B=_rng.uniform(50, 3000),
                             alpha=_rng.uniform(0.2, 0.5), beta=_rng.uniform(0.2, 0.5)) for _ in range(5)]
for _law in _laws:
    for _C in (1e18, 3.3e21, 5.76e23, 1e26):
        _n, _d = _law.compute_optimal(_C)
        _sn, _sd = compute_optimal(_C, _law.E, _law.A, _law.B, _law.alpha, _law.beta)
        assert abs(_sn - _n) <= 1e-9 * _n and abs(_sd - _d) <= 1e-9 * _d, "wrong N_opt or D_opt"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your budget (6 points)

Use Hoffmann et al.'s fit (E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28; also
`labutils.scaling.HOFFMANN_2022`) and your budget `PARAMS["compute_flops"]` (FLOPs). Answers
within 2 % get full marks.

* `answer_n_opt`, `answer_d_opt`: the compute-optimal parameters and tokens;
* `answer_tokens_per_param`: D_opt / N_opt (compare with the ≈ 20 rule of thumb);
* `answer_loss_opt`: the predicted loss at (N_opt, D_opt), in nats/token;
* `answer_loss_small`: the predicted loss if the same budget trains a model of
  `PARAMS["n_params_small"]` parameters instead (on D = C / (6·N) tokens).
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_E, _A, _B, _a, _b = 1.69, 406.4, 410.7, 0.34, 0.28
_C = PARAMS["compute_flops"]
_G = (_a * _A / (_b * _B)) ** (1 / (_a + _b))
answer_n_opt = _G * (_C / 6) ** (_b / (_a + _b))
answer_d_opt = _C / (6 * answer_n_opt)
answer_tokens_per_param = answer_d_opt / answer_n_opt
answer_loss_opt = _E + _A / answer_n_opt**_a + _B / answer_d_opt**_b
_Ns = PARAMS["n_params_small"]
answer_loss_small = _E + _A / _Ns**_a + _B / (_C / (6 * _Ns))**_b
### END SOLUTION
print(f"N_opt = {answer_n_opt:.3g}, D_opt = {answer_d_opt:.3g} ({answer_tokens_per_param:.1f} tokens/param)")
print(f"loss: {answer_loss_opt:.4f} at the optimum, {answer_loss_small:.4f} for the small model")
'''),
        tests("napkin_n_opt", 1, '''
assert isinstance(answer_n_opt, (int, float)) and answer_n_opt > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "n_opt", answer_n_opt, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_d_opt", 1, '''
assert isinstance(answer_d_opt, (int, float)) and answer_d_opt > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "d_opt", answer_d_opt, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_tokens_per_param", 1, '''
assert isinstance(answer_tokens_per_param, (int, float)) and answer_tokens_per_param > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "tokens_per_param", answer_tokens_per_param, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_loss_opt", 1, '''
assert isinstance(answer_loss_opt, (int, float)) and answer_loss_opt > 1.69
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "loss_opt", answer_loss_opt, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_loss_small", 2, '''
assert isinstance(answer_loss_small, (int, float)) and answer_loss_small > 1.69
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "loss_small", answer_loss_small, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
