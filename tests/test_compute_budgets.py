"""Chapter 2's compute budgets: Table D.1 of GPT-3, Kaplan's single-variable laws, BloombergGPT."""

import math

import pytest

from labutils.compute_budgets import (
    BLOOMBERG_GPT, KAPLAN_SINGLE, TABLE_D1, ComputeRow, chinchilla_sizing, kaplan_single_loss,
    table_d1_flops, table_d1_pf_days,
)

PF_DAY = 1e15 * 24 * 3600  # FLOPs in one petaflop/s-day, written out independently


def test_table_d1_reproduced_row_by_row():
    """Brown et al. 2020, App. D, Table D.1: every PF-days entry (printed to 3 significant
    figures) is 6 × active parameters × tokens, within the printing's rounding (0.5 %)."""
    assert len(TABLE_D1) == 17
    for row in TABLE_D1:
        assert table_d1_pf_days(row) == pytest.approx(row.pf_days, rel=5e-3), row.name


def test_table_d1_hand_worked_rows():
    """Two rows by hand: T5-11B has 3 FLOPs per parameter per token (half the parameters active):
    3 × 11e9 × 1e12 = 3.3e22 FLOPs (the table's 3.30E+22); GPT-3 175B: 6 × 174.6e9 × 300e9 =
    3.1428e23 FLOPs (the table's 3.14E+23), 3,637.5 PF-days (printed 3.64E+03)."""
    t5 = next(r for r in TABLE_D1 if r.name == "T5-11B")
    gpt3 = next(r for r in TABLE_D1 if r.name == "GPT-3 175B")
    assert table_d1_flops(t5) == pytest.approx(3.3e22)
    assert table_d1_flops(gpt3) == pytest.approx(3.1428e23)
    assert table_d1_pf_days(gpt3) == pytest.approx(3.1428e23 / PF_DAY)


def test_kaplan_single_variable_laws():
    """Kaplan et al. 2020, Eqs. 1.1-1.3: L(N) = (8.8e13/N)^0.076, L(D) = (5.4e13/D)^0.095,
    L(C_min) = (3.1e8/C_min)^0.050; values worked by hand with math.exp/log."""
    assert kaplan_single_loss("N", 1e9) == pytest.approx(math.exp(0.076 * math.log(8.8e13 / 1e9)))
    assert kaplan_single_loss("N", 1e9) == pytest.approx(2.3756, abs=1e-4)
    assert kaplan_single_loss("D", 1e10) == pytest.approx(math.exp(0.095 * math.log(5.4e3)))
    assert kaplan_single_loss("C", 1.0) == pytest.approx(math.exp(0.05 * math.log(3.1e8)))
    assert {k: (v.alpha, v.x_c) for k, v in KAPLAN_SINGLE.items()} == {
        "N": (0.076, 8.8e13), "D": (0.095, 5.4e13), "C": (0.050, 3.1e8)}
    # A power law falls by the same factor for each decade: 10^-alpha.
    assert kaplan_single_loss("D", 1e11) / kaplan_single_loss("D", 1e10) == pytest.approx(10 ** -0.095)


def test_bloomberg_gpt_figures():
    """Wu et al. 2023, abstract (and Lecture 3): 363B financial + 345B general tokens = 708B;
    50.6B parameters trained on 569B tokens; reported 2.36e23 FLOPs, about 1.37× 6ND (presumably
    counting attention and the forward pass that activation checkpointing recomputes)."""
    assert BLOOMBERG_GPT.corpus_tokens == pytest.approx(708e9)
    six_nd = 6 * 50.6e9 * 569e9
    assert six_nd == pytest.approx(1.7275e23, rel=1e-4)
    assert BLOOMBERG_GPT.reported_flops / six_nd == pytest.approx(1.366, abs=1e-3)


def test_chinchilla_sizing_of_bloomberg_budget():
    """At 2.36e23 FLOPs, 20 tokens per parameter gives N = sqrt(C/120) = 44.3B on 887B tokens:
    more tokens than BloombergGPT's whole 708B-token corpus."""
    sizing = chinchilla_sizing(2.36e23)
    n, d = sizing["20 tokens per parameter"]
    assert n == pytest.approx(math.sqrt(2.36e23 / 120))
    assert n == pytest.approx(44.35e9, rel=1e-3)
    assert d > BLOOMBERG_GPT.corpus_tokens
    for name, (n_opt, d_opt) in sizing.items():
        assert 6 * n_opt * d_opt == pytest.approx(2.36e23, rel=0.05), name


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_inputs(bad):
    with pytest.raises(ValueError, match="x must be"):
        kaplan_single_loss("N", bad)
    with pytest.raises(ValueError, match="flops"):
        chinchilla_sizing(bad)
    with pytest.raises(ValueError, match="n_params"):
        ComputeRow("x", bad, 1e9, 1.0, 1.0)


def test_bad_names():
    with pytest.raises(ValueError, match="which must be one of"):
        kaplan_single_loss("L", 1.0)
    with pytest.raises(TypeError, match="row must be a ComputeRow"):
        table_d1_flops("GPT-3")
    with pytest.raises(ValueError, match="active_fraction"):
        ComputeRow("x", 1e9, 1e9, 1.5, 1.0)
