"""The Chinchilla parametric law, its closed-form compute-optimal allocation, and Kaplan's law.

Chinchilla (Hoffmann et al. 2022, Eq. 2; lecture 000_f52c65b7512ce437.txt):

    L(N, D) = E + A / N^alpha + B / D^beta

N = parameters, D = training tokens, L = loss in nats/token. Under a compute budget C = 6·N·D
FLOPs (Kaplan et al. 2020, Sec. 2.1), minimising L gives (Hoffmann et al. 2022, Eq. 4 / App. D.2):

    G = (alpha·A / (beta·B))^(1/(alpha+beta))
    N_opt(C) = G · (C/6)^(beta/(alpha+beta)),   D_opt(C) = C / (6·N_opt)

E never moves the optimum; it only sets the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labutils.flops import FLOPS_PER_MAC, training_multiplier
from labutils.throughput import PETAFLOP_S_DAY_FLOPS

# C = 6·N·D: 2 FLOPs per multiply-add × 3 for forward + backward (Chapter 1, labutils.flops).
FLOPS_PER_PARAM_TOKEN = float(FLOPS_PER_MAC * training_multiplier())


def _check_finite_positive(name: str, value: object) -> np.ndarray:
    """Return ``value`` as a float array after checking every entry is positive and finite."""
    if isinstance(value, bool) or isinstance(value, str):
        raise TypeError(f"{name} must be a positive number or array of numbers, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a positive number or array of numbers, got {value!r}") from err
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"{name} must be positive and finite (in (0, inf)), got {value!r}")
    return arr


def _out(arr: np.ndarray) -> float | np.ndarray:
    return float(arr) if arr.ndim == 0 else arr


def _check_param(name: str, value: object, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        rng = "[0, inf)" if allow_zero else "(0, inf)"
        raise ValueError(f"{name} must be finite and in {rng}, got {value}")


@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, Eq. 2), in nats/token.

    ``E`` is the irreducible loss (entropy of the data), ``A/N^alpha`` the penalty for a finite
    model, ``B/D^beta`` the penalty for finite data. ``source`` says where the constants come from.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def __post_init__(self) -> None:
        _check_param("E", self.E, allow_zero=True)
        for name in ("A", "B", "alpha", "beta"):
            _check_param(name, getattr(self, name))

    def loss(self, N: object, D: object) -> float | np.ndarray:
        """Predicted loss (nats/token) of N parameters trained on D tokens (arrays broadcast)."""
        n = _check_finite_positive("N", N)
        d = _check_finite_positive("D", D)
        return _out(self.E + self.A / n**self.alpha + self.B / d**self.beta)

    @property
    def a(self) -> float:
        """Exponent of N_opt ∝ C^a: beta/(alpha+beta) (Hoffmann et al. 2022, Eq. 4)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ∝ C^b: alpha/(alpha+beta); a + b = 1."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """G = (alpha·A / (beta·B))^(1/(alpha+beta)) (Hoffmann et al. 2022, Eq. 4)."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def compute_optimal(self, C: object) -> tuple[float | np.ndarray, float | np.ndarray]:
        """(N_opt, D_opt) minimising L under C = 6·N·D FLOPs; closed form of Hoffmann Eq. 4."""
        c = _check_finite_positive("C", C)
        n_opt = self.G * (c / FLOPS_PER_PARAM_TOKEN) ** self.a
        d_opt = c / (FLOPS_PER_PARAM_TOKEN * n_opt)
        return _out(n_opt), _out(d_opt)

    def optimal_loss(self, C: object) -> float | np.ndarray:
        """Loss of the compute-optimal model at budget C (FLOPs), nats/token."""
        n, d = self.compute_optimal(C)
        return self.loss(n, d)

    def loss_at_compute(self, N: object, C: object) -> float | np.ndarray:
        """Loss of N parameters trained with C FLOPs, i.e. on D = C/(6N) tokens (an IsoFLOP curve)."""
        n = _check_finite_positive("N", N)
        c = _check_finite_positive("C", C)
        return self.loss(n, c / (FLOPS_PER_PARAM_TOKEN * n))

    def tokens_per_param(self, C: object) -> float | np.ndarray:
        """D_opt / N_opt at budget C: grows as C^(b-a) unless alpha == beta."""
        n, d = self.compute_optimal(C)
        return _out(np.asarray(d) / np.asarray(n))

    def tokens_for_loss(self, N: object, target_loss: float) -> float | np.ndarray:
        """Tokens D an N-parameter model needs to reach ``target_loss`` (inf if it never can)."""
        n = _check_finite_positive("N", N)
        _check_param("target_loss", target_loss)
        gap = target_loss - self.E - self.A / n**self.alpha  # what B/D^beta may still cost
        with np.errstate(divide="ignore"):
            d = np.where(gap > 0, (self.B / np.where(gap > 0, gap, 1.0)) ** (1.0 / self.beta), np.inf)
        return _out(d)


# One petaflop/s-day = 1e15 FLOP/s × 86 400 s = 8.64e19 FLOPs (Kaplan et al. 2020, Sec. 1.3),
# defined once in labutils.throughput (Chapter 3); these helpers accept arrays too.
PF_DAY_FLOPS = PETAFLOP_S_DAY_FLOPS


def to_pf_days(flops: object) -> float | np.ndarray:
    """FLOPs → petaflop/s-days (1 PF-day = 1e15 FLOP/s for 24 h; lecture 003_f67430602ab4012b.txt)."""
    return _out(_check_finite_positive("flops", flops) / PF_DAY_FLOPS)


def from_pf_days(pf_days: object) -> float | np.ndarray:
    """Petaflop/s-days → FLOPs."""
    return _out(_check_finite_positive("pf_days", pf_days) * PF_DAY_FLOPS)


@dataclass(frozen=True)
class KaplanLaw:
    """Kaplan et al. 2020's L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Eq. 1.5/4.1).

    N counts *non-embedding* parameters, losses are nats/token on WebText2. There is no E: the
    law goes to 0 as N, D → ∞. Default constants: Table 2 ("Fits to L(N, D)").
    """

    alpha_N: float = 0.076
    alpha_D: float = 0.103
    N_c: float = 6.4e13
    D_c: float = 1.8e13
    source: str = "Kaplan et al. 2020, Table 2 (fit of Eq. 4.1 to early-stopped runs)"

    def __post_init__(self) -> None:
        for name in ("alpha_N", "alpha_D", "N_c", "D_c"):
            _check_param(name, getattr(self, name))

    def loss(self, N: object, D: object) -> float | np.ndarray:
        """Predicted loss (nats/token) of N non-embedding parameters trained on D tokens."""
        n = _check_finite_positive("N", N)
        d = _check_finite_positive("D", D)
        return _out(((self.N_c / n) ** (self.alpha_N / self.alpha_D) + self.D_c / d) ** self.alpha_D)


KAPLAN_2020 = KaplanLaw()
# Kaplan et al. 2020, Eq. 6.1 and Fig. 14 (left): the compute-efficient frontier they measured,
# N_opt = 1.3e9 · C_min^0.73 with C_min in PF-days (non-embedding parameters).
KAPLAN_N_OPT_COEFF = 1.3e9
KAPLAN_N_OPT_EXPONENT = 0.73


def kaplan_compute_optimal(C: object) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Kaplan et al. 2020's compute-efficient (N_opt, D_opt) at C FLOPs (Eq. 6.1, Fig. 14).

    N_opt = 1.3e9 · (C / PF-day)^0.73 and D_opt = C / (6·N_opt). Kaplan's C and N exclude
    embeddings; treat the comparison with Chinchilla (which counts all parameters) as rough.
    """
    c = _check_finite_positive("C", C)
    n_opt = KAPLAN_N_OPT_COEFF * (c / PF_DAY_FLOPS) ** KAPLAN_N_OPT_EXPONENT
    return _out(n_opt), _out(c / (FLOPS_PER_PARAM_TOKEN * n_opt))


def inference_aware_optimal(law: ChinchillaLaw, target_loss: float, inference_tokens: float,
                            n_grid: int = 2000) -> dict[str, float]:
    """Smallest lifetime compute (training + inference) that reaches ``target_loss``.

    Training costs 6·N·D FLOPs, serving ``inference_tokens`` costs 2·N per token (a forward pass,
    Kaplan et al. 2020, Eq. 2.2), so lifetime FLOPs = 6·N·D(N) + 2·N·D_inf, with D(N) the tokens
    an N-parameter model needs to reach the target (Sardana et al. 2023, "Beyond
    Chinchilla-Optimal", Sec. 2). Minimised over N on a log grid.

    Returns dict with ``n_params``, ``tokens``, ``train_flops``, ``inference_flops``,
    ``total_flops`` and ``tokens_per_param``.
    """
    if not isinstance(law, ChinchillaLaw):
        raise TypeError(f"law must be a ChinchillaLaw, got {type(law).__name__}")
    _check_param("target_loss", target_loss)
    if target_loss <= law.E:
        raise ValueError(f"target_loss must exceed the law's E = {law.E}, got {target_loss}")
    _check_param("inference_tokens", inference_tokens, allow_zero=True)
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 10:
        raise ValueError(f"n_grid must be an int >= 10, got {n_grid!r}")
    # Smallest N that can reach the target at all: A/N^alpha < target - E.
    n_min = (law.A / (target_loss - law.E)) ** (1.0 / law.alpha)
    n = n_min * np.logspace(1e-6, 4, n_grid)  # from just above n_min to 10^4 × larger
    d = law.tokens_for_loss(n, target_loss)
    train = FLOPS_PER_PARAM_TOKEN * n * d
    infer = 2.0 * n * inference_tokens
    i = int(np.argmin(train + infer))
    return {"n_params": float(n[i]), "tokens": float(d[i]), "train_flops": float(train[i]),
            "inference_flops": float(infer[i]), "total_flops": float(train[i] + infer[i]),
            "tokens_per_param": float(d[i] / n[i])}
