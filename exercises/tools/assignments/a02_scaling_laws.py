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
FLOPs. Here you implement the law and its dual (the cheapest model for a target loss), then
size a model for **your** budget.
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
## Part 2: the cheapest model for a target loss (4 points)

Chapter 2 minimises the loss for a given compute budget: C = 6·N·D fixed, N_opt and D_opt in
closed form (Hoffmann et al. 2022, Eq. 4; `labutils.scaling`). Here you answer the **dual**
question, which the package does not: given a **target loss** L* > E, which (N, D) reaches
L(N, D) = L* for the fewest FLOPs C = 6·N·D?

Hint: with a Lagrange multiplier, the optimum satisfies α·A/N^α = β·B/D^β, and the two terms
A/N^α and B/D^β add up to L* − E. Solve for each term, then for N and D.

Implement `cheapest_for_loss(target_loss, E, A, B, alpha, beta)` returning the tuple `(N, D)`.
You may assume target_loss > E.
"""),
        solution("optimal_impl", '''
def cheapest_for_loss(target_loss, E, A, B, alpha, beta):
    """(N, D) reaching E + A/N**alpha + B/D**beta = target_loss with the least 6·N·D."""
    ### BEGIN SOLUTION
    reducible = target_loss - E
    params_term = reducible * beta / (alpha + beta)  # A / N**alpha at the optimum
    tokens_term = reducible - params_term  # B / D**beta
    return (A / params_term) ** (1.0 / alpha), (B / tokens_term) ** (1.0 / beta)
    ### END SOLUTION
'''),
        tests("optimal_tests", 4, '''
# Public tests: the result reaches the target, and moving along the curve of equal loss costs more.
_hoff = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, Eq. 10
_N, _D = cheapest_for_loss(2.0, **_hoff)
_loss = lambda N, D: 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28  # noqa: E731 (the law of Part 1)
assert abs(_loss(_N, _D) - 2.0) < 1e-9, "the allocation must reach the target loss"
for _f in (0.8, 1.25):  # N·f parameters need these tokens to reach the same loss
    _D_f = (410.7 / (2.0 - 1.69 - 406.4 / (_N * _f) ** 0.34)) ** (1 / 0.28)
    assert 6 * _N * _f * _D_f > 6 * _N * _D, "a nearby allocation reaches the target for less"
### BEGIN HIDDEN TESTS
import random as _random
from labutils.scaling import BESIROGLU_2024 as _B24, HOFFMANN_2022 as _H22, ChinchillaLaw as _Law
from variants import cheapest_for_loss as _ref_cheapest
_rng = _random.Random(4)
_laws = [_H22, _B24] + [_Law(E=_rng.uniform(0.5, 2), A=_rng.uniform(50, 3000), B=_rng.uniform(50, 3000),
                             alpha=_rng.uniform(0.2, 0.5), beta=_rng.uniform(0.2, 0.5)) for _ in range(6)]
for _law in _laws:
    for _gap in (0.01, 0.1, 0.3, 1.0, 3.0):
        _target = _law.E + _gap
        _n, _d = _ref_cheapest(_target, _law.E, _law.A, _law.B, _law.alpha, _law.beta)
        _sn, _sd = cheapest_for_loss(_target, _law.E, _law.A, _law.B, _law.alpha, _law.beta)
        assert abs(_sn - _n) <= 1e-9 * _n and abs(_sd - _d) <= 1e-9 * _d, f"wrong (N, D) for a loss {_gap} above E"
        # duality: the compute-optimal split of the budget it costs is the same (N, D)
        _cn, _cd = _law.compute_optimal(6 * _sn * _sd)
        assert abs(_cn - _sn) <= 1e-6 * _sn, "not the cheapest allocation"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your budget (6 points)

Use Hoffmann et al.'s fit (E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28; also
`labutils.scaling.HOFFMANN_2022`) and your budget `PARAMS["compute_flops"]` (FLOPs). Answers
within 2 % get full marks.

* `answer_n_opt`, `answer_d_opt`: the compute-optimal parameters and tokens for your budget
  (chapter 2's closed form, Hoffmann et al. 2022, Eq. 4: G = (α·A/(β·B))^(1/(α+β)),
  N_opt = G·(C/6)^(β/(α+β)), D_opt = C/(6·N_opt));
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
