"""labutils.coord_check on the real reference GPT: muP passes, SP fails, and each change of the
ablation moves the slope it is meant to move."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labutils import coord_check
from labutils import mup

CONFIG = coord_check.CoordCheckConfig()  # widths 64-512, 4 heads, 8 steps, 3 seeds, lr 1e-2


@pytest.fixture(scope="module")
def stages() -> dict[str, coord_check.CoordCheck]:
    """The whole ablation (SP, then muP's changes one at a time), run once for this module."""
    return {p.name: coord_check.coord_check(p, CONFIG)
            for p in mup.ablation_stages(CONFIG.base_width, CONFIG.base_head_dim)}


def late(s: np.ndarray) -> np.ndarray:
    return s[1:][~np.isnan(s[1:])]


def test_mup_passes_and_sp_fails(stages):
    sp, full = stages["SP"], stages["+ zero init = muP"]
    assert coord_check.passes(full), str(coord_check.judge(full))
    v = coord_check.judge(sp)
    assert not v.passed
    s = sp.slopes()
    # Under SP some hidden activation grows at least like width after step 1.
    assert max(late(s["attn_out"]).max(), late(s["mlp_out"]).max()) >= 1.0
    # Under muP every slope stays within ±0.5 (measured: within ±0.4).
    for tap, slope in full.slopes().items():
        assert np.all(np.abs(late(slope)) <= coord_check.MAX_ABS_SLOPE), (tap, slope)


def test_hidden_init_flattens_step_zero(stages):
    before, after = stages["SP"].slopes(), stages["+ hidden init"].slopes()
    for tap in ("attn_out", "mlp_out"):
        assert before[tap][0] >= 0.8  # 0.02·√n: GPT-2's constant std grows like √width or more
        assert abs(after[tap][0]) <= 0.2


def test_hidden_lr_stops_the_growth_during_training(stages):
    before, after = stages["+ hidden init"].slopes(), stages["+ hidden LR"].slopes()
    for tap in ("attn_out", "mlp_out"):
        assert late(before[tap]).max() >= 1.5
        assert late(before[tap]).max() - late(after[tap]).max() >= 1.0


def test_readout_multiplier_flattens_the_logits(stages):
    before, after = stages["+ hidden LR"].slopes(), stages["+ readout 1/ñ"].slopes()
    assert late(before["readout"]).mean() >= 0.4
    assert abs(late(after["readout"]).mean()) <= 0.3
    assert late(before["readout"]).mean() - late(after["readout"]).mean() >= 0.4


def test_attention_one_over_d(stages):
    before, after = stages["+ readout 1/ñ"].slopes(), stages["+ attention 1/d"].slopes()
    # At init q and k are independent: q·k/√d is Θ(1), q·k/d vanishes like d^-1/2.
    assert abs(before["attn_logits"][0]) <= 0.1
    assert after["attn_logits"][0] == pytest.approx(-0.5, abs=0.1)
    # Once q and k correlate, 1/√d lets the logits grow with width; 1/d does not.
    assert late(before["attn_logits"]).max() - late(after["attn_logits"]).max() >= 0.2


def test_zero_init_removes_the_init_terms(stages):
    before, after = stages["+ attention 1/d"], stages["+ zero init = muP"]
    # Without zero init the readout starts at σ·√n/n: a slope of -1/2 at step 0.
    assert before.slopes()["readout"][0] == pytest.approx(-0.5, abs=0.1)
    # With it the model starts at exactly uniform predictions at every width.
    assert np.all(after.magnitude["readout"][0] == 0) and np.all(after.magnitude["attn_logits"][0] == 0)
    assert np.allclose(after.losses[0], math.log(CONFIG.vocab_size), atol=1e-6)


def test_width_slopes_recovers_known_powers():
    widths = (64, 128, 256, 512)
    m = np.array([[w**1.0 for w in widths], [w**-0.5 * 3 for w in widths], [1.0] * 4,
                  [0.0, 1.0, 2.0, 3.0]])
    s = coord_check.width_slopes(widths, m)
    assert s[:3] == pytest.approx([1.0, -0.5, 0.0])
    assert math.isnan(s[3])  # a zero magnitude has no slope
    with pytest.raises(ValueError, match="magnitude"):
        coord_check.width_slopes(widths, m[:, :3])


@pytest.mark.parametrize("kwargs, arg", [
    (dict(widths=(64,)), "widths"),
    (dict(widths=(128, 64)), "widths"),
    (dict(widths=(64, 130)), "n_heads"),
    (dict(steps=1), "steps"),
    (dict(lr=0.0), "lr"),
    (dict(seeds=0), "seeds"),
])
def test_bad_config_names_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        coord_check.CoordCheckConfig(**kwargs)


def test_base_width_must_not_exceed_the_smallest_width():
    with pytest.raises(ValueError, match="base_width"):
        coord_check.coord_check(mup.mup(128, 32), coord_check.CoordCheckConfig(widths=(64, 128), steps=2, seeds=1))
    with pytest.raises(TypeError, match="param"):
        coord_check.coord_check("muP")
