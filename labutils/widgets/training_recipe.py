"""Training-recipe explorer: LR schedule shape, and the LSH S-curve of a (bands, rows) choice.

Every curve comes from :mod:`labutils.schedules` (:func:`schedule_curve`) and
:mod:`labutils.data_quality` (:func:`lsh_candidate_probability`, :func:`lsh_threshold`);
:func:`render` only plots, and :func:`labutils.widgets.calculator.calculator` wires it to the
controls (no pyplot, no Output).
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labutils.data_quality import (FINEWEB_BANDS, FINEWEB_ROWS, lsh_candidate_probability,
                                   lsh_threshold)
from labutils.schedules import COOLDOWNS, KINDS, schedule_curve
from labutils.validate import fraction, integer
from labutils.widgets.calculator import NotebookFigure, calculator


def plot_lr_schedule(ax: Axes, kind: str, total_steps: int, warmup_frac: float,
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


def plot_s_curve(ax: Axes, bands: int, rows: int) -> None:
    """Draw P(candidate) vs Jaccard similarity for ``bands`` × ``rows``, FineWeb's for reference."""
    s = np.linspace(0, 1, 201)
    ax.plot(s, lsh_candidate_probability(s, bands, rows), label=f"b={bands}, r={rows}")
    ax.plot(s, lsh_candidate_probability(s, FINEWEB_BANDS, FINEWEB_ROWS), "k:", lw=1,
            label=f"FineWeb b={FINEWEB_BANDS}, r={FINEWEB_ROWS}")
    ax.axvline(lsh_threshold(bands, rows), color="C0", lw=0.8, ls="--")
    ax.set(xlabel="Jaccard similarity s", ylabel="P(candidate pair)",
           title=f"threshold (1/b)^(1/r) = {lsh_threshold(bands, rows):.2f}")
    ax.legend(loc="lower right")


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """The schedule and the S-curve side by side (9 inches wide, legible at the book's column
    width), and one line naming the LSH threshold."""
    fig = NotebookFigure(figsize=(9, 3.4))
    a1, a2 = fig.subplots(1, 2)
    plot_lr_schedule(a1, values["kind"], values["steps"], values["warm"], values["decay"],
                     values["floor"], values["cool"])
    plot_s_curve(a2, values["bands"], values["rows"])
    fig.tight_layout()
    text = (f"<b>{values['kind']}</b> schedule over {values['steps']:,} steps; LSH with "
            f"b = {values['bands']} bands of r = {values['rows']} rows: threshold "
            f"(1/b)^(1/r) = {lsh_threshold(values['bands'], values['rows']):.3f}")
    return text, fig


def training_recipe_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    box = dict(style={"description_width": "120px"}, layout=w.Layout(width="420px"))
    d = dict(box, continuous_update=False)  # sliders recompute on release
    controls = {
        "kind": w.Dropdown(options=KINDS, value="wsd", description="schedule", **box),
        "steps": w.IntSlider(value=1000, min=100, max=10_000, step=100, description="total steps", **d),
        "warm": w.FloatSlider(value=0.05, min=0.0, max=0.3, step=0.01, description="warm-up frac", **d),
        "decay": w.FloatSlider(value=0.2, min=0.0, max=0.7, step=0.05, description="decay frac", **d),
        "floor": w.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.05, description="floor (× peak)", **d),
        "cool": w.Dropdown(options=COOLDOWNS, value="1-sqrt", description="WSD cooldown", **box),
        "bands": w.IntSlider(value=FINEWEB_BANDS, min=1, max=50, description="LSH bands b", **d),
        "rows": w.IntSlider(value=FINEWEB_ROWS, min=1, max=20, description="LSH rows r", **d),
    }
    calc = calculator(controls, render)
    c = list(controls.values())
    return w.VBox([w.HTML("<b>Recipe explorer</b>: LR schedule and LSH S-curve"),
                   w.HBox([w.VBox(c[:6]), w.VBox(c[6:])]), calc.text, calc.image])
