"""Harm's law (labutils.scaling.harms_law) against de Vries 2023, "Go smol or go home"
(https://www.harmdevries.com/post/model-size-vs-compute-overhead/), and against the blog's own
closed form, written out here independently of the library."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labutils.scaling import HOFFMANN_2022, ChinchillaLaw
from labutils.scaling.harms_law import (
    DE_VRIES_2023,
    compute_overhead,
    plan_for_trained_model,
    size_fraction_for_overhead,
    smaller_model_plan,
)


def closed_form_overhead(alpha: float, beta: float, k_n: float) -> float:
    """The blog's k_D = (1 - (k_N^-alpha - 1)·A·N_opt^-alpha / (B·D_opt^-beta))^(-1/beta), where
    (appendix) A·N_opt^-alpha / (B·D_opt^-beta) = A·G^-(alpha+beta)/B = beta/alpha; overhead
    = k_N·k_D - 1."""
    k_d = (1.0 - (k_n**-alpha - 1.0) * beta / alpha) ** (-1.0 / beta)
    return k_n * k_d - 1.0


@pytest.mark.parametrize("k_n", [0.2, 0.3, 0.5, 0.75, 0.9, 1.5])
def test_overhead_matches_the_blogs_closed_form(k_n):
    for law in (HOFFMANN_2022, DE_VRIES_2023):
        expected = closed_form_overhead(law.alpha, law.beta, k_n)
        assert compute_overhead(law, k_n) == pytest.approx(expected, rel=1e-9)


def test_overhead_does_not_depend_on_budget_or_on_A_B_E():
    """Blog, appendix: k_D is invariant to C; the constants A, B, E cancel."""
    other = ChinchillaLaw(E=0.5, A=50.0, B=3000.0, alpha=HOFFMANN_2022.alpha, beta=HOFFMANN_2022.beta)
    for c in (1e19, 1e23, 1e27):
        for law in (HOFFMANN_2022, other):
            assert smaller_model_plan(law, c, 0.5).compute_overhead == pytest.approx(
                closed_form_overhead(0.34, 0.28, 0.5), rel=1e-9)


def test_blog_headline_numbers():
    """Blog, section "The critical model size": 75 % of the optimal size costs 2.8 % extra compute,
    half the size about 20 %, a quarter 188 %; about 30 % of the size costs about 100 %."""
    law = HOFFMANN_2022
    assert compute_overhead(law, 0.75) * 100 == pytest.approx(2.8, abs=0.05)
    assert compute_overhead(law, 0.5) * 100 == pytest.approx(20, abs=1.0)
    assert compute_overhead(law, 0.25) * 100 == pytest.approx(188, abs=1.0)
    assert size_fraction_for_overhead(law, 1.0) == pytest.approx(0.30, abs=0.01)


def test_blog_range_40_to_60_percent():
    """Blog: "a model size within 40-60% of the compute-optimal model size ... a 10-42% compute
    overhead". Our 40 % point gives 43.7 % with the paper's (and the blog table's) exponents; the
    blog's 42 % matches its stated alpha = 0.32 instead (41.6 %). Tolerance: 2 points."""
    assert compute_overhead(HOFFMANN_2022, 0.6) * 100 == pytest.approx(10, abs=0.5)
    assert compute_overhead(HOFFMANN_2022, 0.4) * 100 == pytest.approx(42, abs=2.0)
    blog_stated = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.32, beta=0.28)
    assert compute_overhead(blog_stated, 0.4) * 100 == pytest.approx(42, abs=0.5)


@pytest.mark.parametrize("c, n_b, d_b, n05_b, d05_b, n03_b, d03_b", [
    (2.21e19, 0.40, 9.22, 0.20, 22.28, 0.12, 63.20),
    (1.62e20, 0.99, 27.20, 0.50, 65.70, 0.30, 186.35),
    (2.46e22, 9.87, 415.53, 4.93, 1003.77, 2.96, 2847.27),
    (1e23, 18.73, 889.63, 9.37, 2149.02, 5.62, 6095.86),
    (1.71e24, 68.60, 4154.24, 34.30, 10035.16, 20.58, 28465.50),
])
def test_blog_table_for_k_n_1_05_03(c, n_b, d_b, n05_b, d05_b, n03_b, d03_b):
    """Blog, section "Training tokens for various k_N" (its update of Chinchilla Table A3), with the
    blog's constants alpha=0.336, beta=0.283, E=1.62. Printed to two decimals in billions."""
    half = smaller_model_plan(DE_VRIES_2023, c, 0.5)
    third = smaller_model_plan(DE_VRIES_2023, c, 0.3)
    assert half.optimal_n_params / 1e9 == pytest.approx(n_b, abs=0.006)
    assert half.optimal_tokens / 1e9 == pytest.approx(d_b, rel=1e-3)
    assert half.n_params / 1e9 == pytest.approx(n05_b, abs=0.006)
    assert half.tokens / 1e9 == pytest.approx(d05_b, rel=1e-3)
    assert third.n_params / 1e9 == pytest.approx(n03_b, abs=0.006)
    assert third.tokens / 1e9 == pytest.approx(d03_b, rel=1e-3)


def test_blog_llama_7b():
    """Blog, section "LLaMA-7B and SantaCoder": 6.9B parameters on 1000B tokens is 4.14e22 FLOPs;
    its optimal model has 12.52B parameters on 550B tokens; k_N = 0.57 gives 7.13B on 1088B
    tokens, a compute overhead of roughly 12 %."""
    plan = smaller_model_plan(DE_VRIES_2023, 6 * 6.9e9 * 1000e9, 0.57)
    assert plan.optimal_flops == pytest.approx(4.14e22)
    assert plan.optimal_n_params / 1e9 == pytest.approx(12.52, abs=0.01)
    assert plan.optimal_tokens / 1e9 == pytest.approx(550, rel=0.005)
    assert plan.n_params / 1e9 == pytest.approx(7.13, abs=0.01)
    assert plan.tokens / 1e9 == pytest.approx(1088, rel=0.001)
    assert plan.compute_overhead * 100 == pytest.approx(12, abs=1.0)
    exact = plan_for_trained_model(DE_VRIES_2023, 6.9e9, 1000e9)  # the point the blog fits by eye
    assert exact.size_fraction == pytest.approx(0.57, abs=0.015)
    assert exact.compute_overhead * 100 == pytest.approx(12, abs=1.0)


def test_blog_santacoder_optimum():
    """Blog: SantaCoder, 1.1B on 236B tokens = 1.56e21 FLOPs; optimal 2.79B on 93B tokens; k_N = 0.46
    gives 1.29B on 258B tokens. (The blog's "roughly 24 %" overhead does not follow from its own
    numbers: 6 · 1.29B · 258B / 1.56e21 - 1 = 28 %.)"""
    plan = smaller_model_plan(DE_VRIES_2023, 6 * 1.1e9 * 236e9, 0.46)
    assert plan.optimal_n_params / 1e9 == pytest.approx(2.79, abs=0.01)
    assert plan.optimal_tokens / 1e9 == pytest.approx(93, rel=0.01)
    assert plan.n_params / 1e9 == pytest.approx(1.29, abs=0.01)
    assert plan.tokens / 1e9 == pytest.approx(258, rel=0.002)
    assert plan.compute_overhead == pytest.approx(6 * 1.29e9 * 258e9 / 1.5576e21 - 1, abs=0.005)


def test_trained_model_plan_reaches_the_same_loss():
    plan = plan_for_trained_model(HOFFMANN_2022, 8e9, 15e12)
    assert HOFFMANN_2022.optimal_loss(plan.optimal_flops) == pytest.approx(plan.loss, rel=1e-9)
    assert plan.compute_overhead == pytest.approx(compute_overhead(HOFFMANN_2022, plan.size_fraction),
                                                  rel=1e-6)


def test_too_small_never_reaches_the_loss_and_bigger_also_costs():
    k_min = (1 + 0.34 / 0.28) ** (-1 / 0.34)  # where the blog's k_D has a zero base: asymptote
    assert math.isinf(compute_overhead(HOFFMANN_2022, 0.99 * k_min))
    assert math.isfinite(compute_overhead(HOFFMANN_2022, 1.01 * k_min))
    assert compute_overhead(HOFFMANN_2022, 2.0) > 0
    assert compute_overhead(HOFFMANN_2022, 1.0) == pytest.approx(0, abs=1e-12)
    arr = compute_overhead(HOFFMANN_2022, np.array([0.3, 0.5]))
    assert arr.shape == (2,) and arr[0] > arr[1]


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), True, "0.5", None, []])
def test_bad_size_fraction(bad):
    with pytest.raises((ValueError, TypeError), match="size_fraction"):
        compute_overhead(HOFFMANN_2022, bad)


@pytest.mark.parametrize("call", [
    lambda: smaller_model_plan(HOFFMANN_2022, -1.0, 0.5),
    lambda: smaller_model_plan(HOFFMANN_2022, 1e23, 0),
    lambda: smaller_model_plan("law", 1e23, 0.5),
    lambda: plan_for_trained_model(HOFFMANN_2022, 0, 1e12),
    lambda: plan_for_trained_model(HOFFMANN_2022, 1e9, float("nan")),
    lambda: size_fraction_for_overhead(HOFFMANN_2022, 0),
    lambda: size_fraction_for_overhead(HOFFMANN_2022, True),
    lambda: size_fraction_for_overhead(HOFFMANN_2022, 1e12),
])
def test_bad_input_raises(call):
    with pytest.raises((ValueError, TypeError)):
        call()
