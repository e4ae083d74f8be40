"""labutils.trends against Lecture 1 (von Werra, "Pretraining Large Language Models"): the
GPT-1…4 table, its compute growth factors, and small models trained past the Chinchilla rule."""

from __future__ import annotations

import math

import pytest

from labutils import trends
from labutils.scaling import GPT3_175B_PF_DAYS, to_pf_days


def _one_significant_figure(x: float) -> float:
    exponent = math.floor(math.log10(x))
    return round(x / 10**exponent) * 10**exponent


def test_lecture_growth_factors_follow_from_its_table():
    """Lecture 1, slide "Trends: more compute": the table (tokens, parameters) and the factors
    100x, 2000x, 300x between generations. With C = 6·N·D, each factor lies in the range the
    table's token ranges allow; GPT-3 → GPT-4 has no range and is 343x, printed as 300x."""
    growth = trends.compute_growth()
    assert [(g.older, g.newer) for g in growth] == [("GPT-1", "GPT-2"), ("GPT-2", "GPT-3"), ("GPT-3", "GPT-4")]
    # hand-worked: GPT-1→2: 1.4·10 / (0.11·2) = 63.6 to 1.4·20 / (0.11·1) = 254.5
    assert growth[0].low == pytest.approx(14 / 0.22) and growth[0].high == pytest.approx(28 / 0.11)
    # GPT-2→3: 175·300 / (1.4·20) = 1875 to 175·300 / (1.4·10) = 3750
    assert growth[1].low == pytest.approx(1875) and growth[1].high == pytest.approx(3750)
    # GPT-3→4: 1800·10000 / (175·300) = 342.9
    assert growth[2].low == growth[2].high == pytest.approx(18e6 / 52500)
    for g, lecture in zip(growth, trends.LECTURE_COMPUTE_GROWTH):
        assert g.low <= lecture <= g.high or _one_significant_figure(g.low) == lecture


def test_gpt3_compute_agrees_with_table_d1():
    """Brown et al. 2020, Table D.1: 3.64e3 PF-days for GPT-3 175B; 6·175e9·300e9 = 3.15e23 FLOPs
    = 3646 PF-days, within 1 % (Table D.1 counts 174.6B parameters)."""
    gpt3 = trends.GPT_GENERATIONS[2]
    low, high = gpt3.compute_range_flops()
    assert low == high == pytest.approx(3.15e23)
    assert to_pf_days(low) == pytest.approx(GPT3_175B_PF_DAYS, rel=0.01)


def test_llama3_8b_overtraining():
    """Lecture 1, slide "Scaling laws: Chinchilla fix": Llama-3 8B on 15T tokens. The rule's
    20 tokens per parameter gives 160B tokens, so 15T is 93.75x the rule (hand-worked)."""
    llama = next(m for m in trends.SMALL_MODELS if m.name == "Llama 3 8B")
    assert llama.tokens_per_param == pytest.approx(1875)
    assert llama.overtraining == pytest.approx(15e12 / 160e9)


def test_families_are_the_lectures_three():
    """Lecture 1, slide "LLM families": closed APIs, open weights, fully open."""
    assert [(f.weights_available, f.code_and_data_available) for f in trends.MODEL_FAMILIES] == [
        (False, False), (True, False), (True, True)]


def test_context_lengths_grow():
    ctx = [c.context_tokens for c in trends.CONTEXT_LENGTHS]
    assert ctx == sorted(ctx) and ctx[0] == 512 and ctx[-1] == 131_072


@pytest.mark.parametrize("call", [
    lambda: trends.overtraining_factor(0, 1e12),
    lambda: trends.overtraining_factor(8e9, -1.0),
    lambda: trends.overtraining_factor(8e9, "15T"),
    lambda: trends.compute_growth(()),
    lambda: trends.compute_growth(("GPT-1", "GPT-2")),
    lambda: trends.GPTGeneration("x", 2e9, 1e9, 1e8, "s"),
    lambda: trends.GPTGeneration("x", 1e9, 2e9, 0, "s"),
    lambda: trends.GPTGeneration("", 1e9, 2e9, 1e8, "s"),
])
def test_bad_input_raises(call):
    with pytest.raises((ValueError, TypeError)):
        call()
