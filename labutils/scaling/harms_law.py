"""Harm's law: the extra compute a smaller-than-optimal model needs to reach the same loss.

Introduction chapter, "Trends"; Lecture 1 (von Werra, "Pretraining Large Language Models"), slide
"Scaling laws: Harm's law"; Harm de Vries (2023), "Go smol or go home",
https://www.harmdevries.com/post/model-size-vs-compute-overhead/.

Take the compute-optimal model (N_opt, D_opt) of a budget C under a Chinchilla law L(N, D).
Shrink the model to k_N·N_opt and train it on as many tokens as it needs to reach the same loss
L(N_opt, D_opt); the new budget is 6·(k_N·N_opt)·D and the overhead C_new/C - 1. Everything here
goes through :class:`labutils.scaling.law.ChinchillaLaw` (``compute_optimal``, ``loss``,
``tokens_for_loss``, ``optimal_loss``); no formula of the law is written again.

De Vries shows (blog, appendix) that the overhead depends on k_N only, not on C: A, B and E
cancel and only alpha and beta remain. ``tests/test_harms_law.py`` checks that, and the blog's
published numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from labutils.flops import training_flops
from labutils.scaling.law import ChinchillaLaw
from labutils.validate import positive

BLOG_SOURCE = ("de Vries 2023, 'Go smol or go home' "
               "(https://www.harmdevries.com/post/model-size-vs-compute-overhead/)")

# The blog's section "Training tokens for various k_N": alpha and beta nudged from the paper's
# rounded 0.34 / 0.28 so that Approach 3 reproduces Hoffmann et al. 2022, Table A3; A and B are the
# paper's, E = 1.62 as the blog states (E does not move N_opt, D_opt or the overhead).
DE_VRIES_2023 = ChinchillaLaw(
    E=1.62, A=406.4, B=410.7, alpha=0.336, beta=0.283,
    source=BLOG_SOURCE + ", section 'Training tokens for various k_N'",
)

#: The blog's published points (size fraction k_N, compute overhead as a fraction), section "The
#: critical model size": 75 % of the size costs 2.8 %, half 20 %, a quarter 188 %.
BLOG_OVERHEAD_POINTS = ((0.75, 0.028), (0.5, 0.20), (0.25, 1.88))

#: Any budget will do for :func:`compute_overhead` (the overhead does not depend on it); this one
#: is the blog's 1e23-FLOP row of its table.
REFERENCE_BUDGET_FLOPS = 1e23


def _check_law(law: object) -> ChinchillaLaw:
    if not isinstance(law, ChinchillaLaw):
        raise TypeError(f"law must be a ChinchillaLaw, got {type(law).__name__}")
    return law


@dataclass(frozen=True)
class SmallModelPlan:
    """A model k_N times the compute-optimal size, trained until it matches the optimal loss.

    Parameters and tokens are counts, FLOPs are training FLOPs (C = 6·N·D), ``loss`` is in
    nats/token. ``tokens`` is ``inf`` when the smaller model can never reach the loss.
    """

    size_fraction: float  # k_N = n_params / optimal_n_params
    n_params: float
    tokens: float
    train_flops: float
    optimal_n_params: float
    optimal_tokens: float
    optimal_flops: float
    loss: float

    @property
    def token_fraction(self) -> float:
        """k_D = tokens / optimal_tokens."""
        return self.tokens / self.optimal_tokens

    @property
    def compute_overhead(self) -> float:
        """C_new / C_opt - 1, a fraction (0.2 means 20 % more compute than the optimal model)."""
        return self.train_flops / self.optimal_flops - 1.0

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.n_params


def smaller_model_plan(law: ChinchillaLaw, optimal_flops: float, size_fraction: float) -> SmallModelPlan:
    """Shrink the compute-optimal model of ``optimal_flops`` FLOPs to ``size_fraction`` of its size.

    ``size_fraction`` is k_N > 0 (k_N < 1 is a smaller model; k_N > 1 a larger one, which also
    costs extra). The smaller model trains on the tokens it needs to reach the optimal model's
    loss (de Vries 2023, section "Model size vs compute overhead").
    """
    _check_law(law)
    c = positive("optimal_flops", optimal_flops)
    k_n = positive("size_fraction", size_fraction)
    n_opt, d_opt = law.compute_optimal(c)
    target = law.loss(n_opt, d_opt)
    n_params = k_n * n_opt
    tokens = float(law.tokens_for_loss(n_params, target))
    train = training_flops(n_params, tokens) if math.isfinite(tokens) else math.inf
    return SmallModelPlan(size_fraction=k_n, n_params=n_params, tokens=tokens, train_flops=train,
                          optimal_n_params=n_opt, optimal_tokens=d_opt, optimal_flops=c, loss=target)


def compute_overhead(law: ChinchillaLaw, size_fraction: object) -> float | np.ndarray:
    """Compute overhead (a fraction) of a model ``size_fraction`` × the compute-optimal size.

    Scalar or array of k_N > 0; ``inf`` where the model is too small ever to reach the loss.
    Evaluated at :data:`REFERENCE_BUDGET_FLOPS`; the result does not depend on the budget.
    """
    _check_law(law)
    if isinstance(size_fraction, (bool, str)) or size_fraction is None:
        raise TypeError(f"size_fraction must be a number or array of numbers > 0, got {size_fraction!r}")
    k = np.asarray(size_fraction, dtype=float)
    if k.size == 0 or not np.all(np.isfinite(k)) or not np.all(k > 0):
        raise ValueError(f"size_fraction must be finite and > 0, got {size_fraction!r}")
    out = np.array([smaller_model_plan(law, REFERENCE_BUDGET_FLOPS, float(x)).compute_overhead
                    for x in k.ravel()]).reshape(k.shape)
    return float(out) if out.ndim == 0 else out


def plan_for_trained_model(law: ChinchillaLaw, n_params: float, tokens: float) -> SmallModelPlan:
    """Where a trained model (N parameters, D tokens) sits on Harm's curve.

    Finds the compute-optimal model with the same predicted loss L(N, D) (its budget C_opt solves
    ``law.optimal_loss(C_opt) = L(N, D)``); then k_N = N / N_opt and the overhead is
    6·N·D / C_opt - 1. De Vries fits LLaMA-7B and SantaCoder by eye instead (blog, section
    "LLaMA-7B and SantaCoder"); this solves for the exact point.
    """
    _check_law(law)
    n = positive("n_params", n_params)
    d = positive("tokens", tokens)
    target = float(law.loss(n, d))
    flops = training_flops(n, d)

    def gap(log10_c: float) -> float:
        return float(law.optimal_loss(10.0**log10_c)) - target

    # The optimal model reaches the same loss with at most the model's own compute.
    lo = math.log10(flops) - 1.0
    while gap(lo) <= 0:  # widen downwards until the optimal loss is above the target
        lo -= 1.0
    log10_c_opt = brentq(gap, lo, math.log10(flops), xtol=1e-12)
    c_opt = 10.0**log10_c_opt
    n_opt, d_opt = law.compute_optimal(c_opt)
    return SmallModelPlan(size_fraction=n / n_opt, n_params=n, tokens=d, train_flops=flops,
                          optimal_n_params=n_opt, optimal_tokens=d_opt, optimal_flops=c_opt,
                          loss=target)


def size_fraction_for_overhead(law: ChinchillaLaw, overhead: float) -> float:
    """The k_N < 1 whose compute overhead is ``overhead`` (a fraction in (0, 1e9]; 1.0 means +100 %)."""
    _check_law(law)
    target = positive("overhead", overhead)
    if target > 1e9:
        raise ValueError(f"overhead must be a fraction in (0, 1e9], got {overhead!r}")

    def gap(k: float) -> float:
        # Below the asymptote the overhead is inf; cap it so the root finder sees a sign change.
        return min(compute_overhead(law, k), 1e12) - target

    lo, hi = 0.5, 1.0  # the overhead is 0 at k_N = 1 and grows as k_N falls
    while gap(lo) < 0:
        lo /= 2.0
    return float(brentq(gap, lo, hi, xtol=1e-12))
