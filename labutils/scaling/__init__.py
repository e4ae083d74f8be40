"""Scaling laws (Chapter 2): the Chinchilla law, its fits, published constants, and a lab.

Modules, one idea each:

* :mod:`labutils.scaling.law` — ``ChinchillaLaw`` (loss, closed-form compute-optimal N and D),
  Kaplan et al. 2020's law, petaflop/s-days (C = 6ND itself is
  :func:`labutils.flops.training_flops`, Chapter 1), inference-aware sizing.
* :mod:`labutils.scaling.fit` — ``fit_power_law``, ``fit_chinchilla`` (Approach 3),
  ``fit_isoflop(s)`` (Approach 2).
* :mod:`labutils.scaling.published` — Hoffmann 2022 and Besiroglu 2024 fits, the lecture's
  compute-optimal table, tokens-per-parameter of published models, the Epoch-extracted runs.
* :mod:`labutils.scaling.sweep` — train tiny GPTs on a Markov source with known entropy and
  record (N, D, C, loss); ``python -m labutils.scaling.sweep``.
"""

from labutils.scaling.fit import (
    ChinchillaFit,
    IsoFLOPFit,
    fit_chinchilla,
    fit_chinchilla_detailed,
    fit_isoflop,
    fit_isoflops,
    fit_power_law,
)
from labutils.scaling.law import (
    FLOPS_PER_PARAM_TOKEN,
    KAPLAN_2020,
    PF_DAY_FLOPS,
    ChinchillaLaw,
    KaplanLaw,
    from_pf_days,
    inference_aware_optimal,
    kaplan_compute_optimal,
    to_pf_days,
)
from labutils.scaling.published import (
    BESIROGLU_2024,
    GPT3_175B_PF_DAYS,
    GPT3_175B_TABLE_D1_PARAMS,
    GPT3_TABLE_D1_SOURCE,
    HOFFMANN_2022,
    HOFFMANN_EXPONENTS,
    LECTURE_RULE,
    LECTURE_TABLE,
    LECTURE_TABLE_SOURCE,
    PUBLISHED_MODELS,
    load_chinchilla_runs,
    lecture_table,
)

__all__ = [
    "BESIROGLU_2024", "ChinchillaFit", "ChinchillaLaw", "FLOPS_PER_PARAM_TOKEN", "GPT3_175B_PF_DAYS",
    "GPT3_175B_TABLE_D1_PARAMS", "GPT3_TABLE_D1_SOURCE",
    "HOFFMANN_2022", "HOFFMANN_EXPONENTS", "IsoFLOPFit", "KAPLAN_2020", "KaplanLaw", "LECTURE_RULE",
    "LECTURE_TABLE", "LECTURE_TABLE_SOURCE", "PF_DAY_FLOPS", "PUBLISHED_MODELS",
    "fit_chinchilla", "fit_chinchilla_detailed", "fit_isoflop", "fit_isoflops", "fit_power_law",
    "from_pf_days", "inference_aware_optimal", "kaplan_compute_optimal", "lecture_table",
    "load_chinchilla_runs", "to_pf_days",
]
