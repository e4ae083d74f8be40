"""Training-recipe explorer: LR schedule shape, and the LSH S-curve of a (bands, rows) choice.

Every curve comes from :mod:`labutils.schedules` (:func:`schedule_curve`) and
:mod:`labutils.data_quality` (:func:`lsh_candidate_probability`, :func:`lsh_threshold`); the
callbacks only plot.
"""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np

from labutils.data_quality import (FINEWEB_BANDS, FINEWEB_ROWS, lsh_candidate_probability,
                                   lsh_threshold)
from labutils.schedules import COOLDOWNS, KINDS, schedule_curve
from labutils.validate import fraction, integer


def plot_schedule(ax: plt.Axes, kind: str, total_steps: int, warmup_frac: float,
                  decay_frac: float, min_lr_ratio: float, cooldown: str) -> None:
    """Draw one schedule (peak LR = 1) on ``ax``; the warm-up and cooldown are fractions of
    ``total_steps`` in [0, 1]."""
    total_steps = integer("total_steps", total_steps, 1)
    warmup = round(fraction("warmup_frac", warmup_frac) * total_steps)
    fraction("decay_frac", decay_frac)
    decay = min(round(decay_frac * total_steps), total_steps - warmup)
    lrs = schedule_curve(kind, total_steps, peak_lr=1.0, warmup_steps=warmup, decay_steps=decay,
                         min_lr_ratio=min_lr_ratio, cooldown=cooldown)
    ax.plot(np.arange(total_steps), lrs, label=kind)
    ax.set(xlabel="step", ylabel="LR / peak LR", ylim=(0, 1.05), title=f"{kind} schedule")


def plot_s_curve(ax: plt.Axes, bands: int, rows: int) -> None:
    """Draw P(candidate) vs Jaccard similarity for ``bands`` × ``rows``, FineWeb's for reference."""
    s = np.linspace(0, 1, 201)
    ax.plot(s, lsh_candidate_probability(s, bands, rows), label=f"b={bands}, r={rows}")
    ax.plot(s, lsh_candidate_probability(s, FINEWEB_BANDS, FINEWEB_ROWS), "k:", lw=1,
            label=f"FineWeb b={FINEWEB_BANDS}, r={FINEWEB_ROWS}")
    ax.axvline(lsh_threshold(bands, rows), color="C0", lw=0.8, ls="--")
    ax.set(xlabel="Jaccard similarity s", ylabel="P(candidate pair)",
           title=f"threshold (1/b)^(1/r) = {lsh_threshold(bands, rows):.2f}")
    ax.legend(loc="lower right")


def recipe_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "120px"}, layout=w.Layout(width="420px"),
             continuous_update=False)
    kind = w.Dropdown(options=KINDS, value="wsd", description="schedule", **d)
    steps = w.IntSlider(value=1000, min=100, max=10_000, step=100, description="total steps", **d)
    warm = w.FloatSlider(value=0.05, min=0.0, max=0.3, step=0.01, description="warm-up frac", **d)
    decay = w.FloatSlider(value=0.2, min=0.0, max=0.7, step=0.05, description="decay frac", **d)
    floor = w.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.05, description="floor (× peak)", **d)
    cool = w.Dropdown(options=COOLDOWNS, value="1-sqrt", description="WSD cooldown", **d)
    bands = w.IntSlider(value=FINEWEB_BANDS, min=1, max=50, description="LSH bands b", **d)
    rows = w.IntSlider(value=FINEWEB_ROWS, min=1, max=20, description="LSH rows r", **d)
    out = w.Output()

    def update(_=None) -> None:
        out.clear_output(wait=True)
        with out:
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
            plot_schedule(a1, kind.value, steps.value, warm.value, decay.value, floor.value,
                          cool.value)
            plot_s_curve(a2, bands.value, rows.value)
            fig.tight_layout()
            plt.show()

    controls = [kind, steps, warm, decay, floor, cool, bands, rows]
    for c in controls:
        c.observe(update, names="value")
    update()
    return w.VBox([w.HTML("<b>Recipe explorer</b>: LR schedule and LSH S-curve"),
                   w.HBox([w.VBox(controls[:6]), w.VBox(controls[6:])]), out])
