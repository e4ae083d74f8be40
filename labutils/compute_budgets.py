"""Compute budgets of published models (Chapter 2, scaling laws).

Lecture 3 (COMSE6998, "Scaling laws and compute-optimal models") measures training budgets in
petaflop/s-days and shows three things this module makes computable:

* :data:`TABLE_D1`: the petaflop/s-days of 17 language models (Brown et al. 2020, Table D.1, the
  data behind Figure 2.2, the lecture's "Number of petaflop/s-days to pretrain various LLMs"),
  and :func:`table_d1_flops`, which recomputes each row from C ≈ 6·N·D;
* :data:`KAPLAN_SINGLE`: Kaplan et al. 2020's single-variable power laws L(N), L(D), L(C_min)
  (Eqs. 1.1-1.3) and :func:`kaplan_single_loss`;
* :data:`BLOOMBERG_GPT`: BloombergGPT's size, data and compute (Wu et al. 2023), and
  :func:`chinchilla_sizing`, which puts its budget through the Chinchilla laws.

Units: parameters, tokens, FLOPs (floating-point operations), petaflop/s-days, nats per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labutils.flops import training_flops
from labutils.scaling import (
    BESIROGLU_2024, GPT3_175B_PF_DAYS, GPT3_175B_TABLE_D1_PARAMS, HOFFMANN_2022, LECTURE_RULE,
    to_pf_days,
)
from labutils.scaling.law import ChinchillaLaw
from labutils.validate import fraction, positive

TABLE_D1_SOURCE = "Brown et al. 2020, App. D, Table D.1 ('Total train compute', PF-days)"


@dataclass(frozen=True)
class ComputeRow:
    """One row of Brown et al. 2020, Table D.1.

    ``active_fraction`` is the share of parameters a token passes through: 0.5 for T5 (an
    encoder-decoder: a token is in the encoder or in the decoder), 1 for the others.
    """

    name: str
    n_params: float  # parameters ("Params (M)" × 1e6)
    tokens: float  # training tokens ("Training tokens (billions)" × 1e9)
    active_fraction: float  # "Frac of params active for each token"
    pf_days: float  # the table's "Total train compute (PF-days)"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        positive("n_params", self.n_params)
        positive("tokens", self.tokens)
        positive("active_fraction", fraction("active_fraction", self.active_fraction))
        positive("pf_days", self.pf_days)


def _rows(family: str, active: float, tokens_b: float, rows: tuple[tuple[str, float, float], ...]
          ) -> tuple[ComputeRow, ...]:
    return tuple(ComputeRow(f"{family}{suffix}", params_m * 1e6, tokens_b * 1e9, active, pf)
                 for suffix, params_m, pf in rows)


# Brown et al. 2020, Table D.1: (name suffix, Params (M), Total train compute (PF-days)).
TABLE_D1 = (
    _rows("T5-", 0.5, 1000, (("Small", 60, 2.08), ("Base", 220, 7.64), ("Large", 770, 26.7),
                             ("3B", 3000, 104), ("11B", 11000, 382)))
    + _rows("BERT-", 1.0, 250, (("Base", 109, 1.89), ("Large", 355, 6.16)))
    + _rows("RoBERTa-", 1.0, 2000, (("Base", 125, 17.4), ("Large", 355, 49.3)))
    + _rows("GPT-3 ", 1.0, 300, (("Small", 125, 2.60), ("Medium", 356, 7.42), ("Large", 760, 15.8),
                                 ("XL", 1320, 27.5), ("2.7B", 2650, 55.2), ("6.7B", 6660, 139),
                                 ("13B", 12850, 268),
                                 # the 175B row is the one labutils.scaling already holds
                                 ("175B", GPT3_175B_TABLE_D1_PARAMS / 1e6, GPT3_175B_PF_DAYS)))
)


def table_d1_flops(row: ComputeRow) -> float:
    """Training FLOPs of a Table D.1 row: 6 · (active parameters) · tokens.

    Brown et al. count 2 FLOPs per active parameter per token forward and 3× that for forward
    plus backward, ignoring attention: C ≈ 6·N·D (:func:`labutils.flops.training_flops`) with N
    the parameters a token passes through.
    """
    if not isinstance(row, ComputeRow):
        raise TypeError(f"row must be a ComputeRow, got {type(row).__name__}")
    return training_flops(row.active_fraction * row.n_params, row.tokens)


def table_d1_pf_days(row: ComputeRow) -> float:
    """:func:`table_d1_flops` in petaflop/s-days (8.64e19 FLOPs each)."""
    return float(to_pf_days(table_d1_flops(row)))


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = (x_c / x)^alpha, nats per token: one of Kaplan et al. 2020's single-variable laws."""

    variable: str  # what x is, with its unit
    alpha: float
    x_c: float
    equation: str

    def __post_init__(self) -> None:
        positive("alpha", self.alpha)
        positive("x_c", self.x_c)


# Kaplan et al. 2020, Sec. 1.2, Eqs. 1.1-1.3 (WebText2 test loss, nats/token). N excludes embedding
# parameters; L(N) is for models trained to convergence, L(D) for large models with early
# stopping, L(C_min) for compute-efficient training (C_min in PF-days).
KAPLAN_SINGLE = {
    "N": PowerLaw("non-embedding parameters", 0.076, 8.8e13, "Eq. 1.1"),
    "D": PowerLaw("tokens", 0.095, 5.4e13, "Eq. 1.2"),
    "C": PowerLaw("compute C_min (PF-days)", 0.050, 3.1e8, "Eq. 1.3"),
}


def kaplan_single_loss(which: str, x: object) -> float | np.ndarray:
    """Kaplan et al. 2020's L(x) = (x_c/x)^alpha for ``which`` in {"N", "D", "C"} (nats/token).

    ``x`` is in the law's unit (parameters, tokens, PF-days), finite and > 0; arrays are accepted.
    """
    if which not in KAPLAN_SINGLE:
        raise ValueError(f"which must be one of {sorted(KAPLAN_SINGLE)}, got {which!r}")
    arr = np.asarray(x, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"x must be finite and > 0, got {x!r}")
    law = KAPLAN_SINGLE[which]
    out = (law.x_c / arr) ** law.alpha
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class DomainModel:
    """A domain-adapted model's size, data and compute, with its source."""

    name: str
    n_params: float  # parameters
    domain_tokens: float  # tokens of domain data in the corpus
    general_tokens: float  # tokens of general-purpose data in the corpus
    trained_tokens: float  # tokens actually seen in training
    reported_flops: float  # training compute the paper reports
    source: str

    def __post_init__(self) -> None:
        for name in ("n_params", "domain_tokens", "general_tokens", "trained_tokens", "reported_flops"):
            positive(name, getattr(self, name))

    @property
    def corpus_tokens(self) -> float:
        return self.domain_tokens + self.general_tokens


# Wu et al. 2023 (arXiv:2303.17564): abstract (50B parameters, 363B financial + 345B general tokens,
# also on Lecture 3's slide) and the training section (50.6B parameters, 569B tokens trained,
# 2.36e23 FLOPs on 512 A100 40GB GPUs for about 53 days).
BLOOMBERG_GPT = DomainModel("BloombergGPT", 50.6e9, 363e9, 345e9, 569e9, 2.36e23,
                            "Wu et al. 2023 (BloombergGPT), abstract and training setup; Lecture 3")


def chinchilla_sizing(flops: float, laws: dict[str, ChinchillaLaw] | None = None) -> dict[str, tuple[float, float]]:
    """Compute-optimal (N_opt, D_opt) at ``flops`` FLOPs by several Chinchilla rules.

    "lecture rule": D = 20·N with C = 6·N·D (Lecture 3's "~20x" table), hence N = sqrt(C/120);
    then each law in ``laws`` (default: Hoffmann et al. 2022 and Besiroglu et al. 2024) through
    its closed form :meth:`ChinchillaLaw.compute_optimal`.
    """
    c = positive("flops", flops)
    tokens_per_param = LECTURE_RULE["d_coeff"] / LECTURE_RULE["n_coeff"]  # 17, the slide's rule
    laws = {"Hoffmann et al. 2022": HOFFMANN_2022, "Besiroglu et al. 2024": BESIROGLU_2024} if laws is None else laws
    n20 = float(np.sqrt(c / training_flops(1.0, 20.0)))
    out = {"20 tokens per parameter": (n20, 20.0 * n20),
           f"slide rule ({tokens_per_param:.0f} tokens per parameter)":
               (LECTURE_RULE["n_coeff"] * c ** LECTURE_RULE["exponent"], LECTURE_RULE["d_coeff"] * c ** LECTURE_RULE["exponent"])}
    for name, law in laws.items():
        n, d = law.compute_optimal(c)
        out[name] = (float(n), float(d))
    return out
