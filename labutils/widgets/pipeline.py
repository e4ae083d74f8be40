"""Pipeline schedule explorer: stages p, micro-batches m, chunks v, schedule → timeline, bubble,
activation memory.

Every number comes from :mod:`labutils.parallel.pipeline.schedule` (``make_schedule``,
``simulate``, ``peak_in_flight``); :func:`render` only draws and formats,
and :func:`labutils.widgets.calculator.calculator` wires it to the controls (no pyplot).
"""

from __future__ import annotations

import ipywidgets as w
from matplotlib.figure import Figure

from labutils.parallel.pipeline import schedule
from labutils.widgets.calculator import NotebookFigure, calculator


def explain(name: str, p: int, m: int, v: int, t_b_over_t_f: float = 2.0,
            t_p2p: float = 0.0) -> tuple[schedule.SimResult, str]:
    """Simulate one setting (times in units of t_f) and describe it in HTML.

    ``naive`` runs the whole batch as one micro-batch (m micro-batches' work, m = 1 schedule);
    ``interleaved`` with m not a multiple of p, or v = 1, is reported instead of simulated.
    """
    if name == "naive":
        sched = schedule.make_schedule("naive", p)
        r = schedule.simulate(sched, m * 1.0, m * t_b_over_t_f, t_p2p)
    else:
        v = v if name == "interleaved" else 1
        sched = schedule.make_schedule(name, p, m, v)
        r = schedule.simulate(sched, 1.0, t_b_over_t_f, t_p2p)
    peaks = r.peak_in_flight
    unit = sched.v
    held = ", ".join(f"{k / unit:g}" for k in peaks)
    html = (
        f"<b>{name}</b>: p = {p} stages, "
        + (f"one batch of {m} micro-batches' work" if name == "naive" else f"m = {m} micro-batches")
        + (f", v = {sched.v} chunks per rank" if sched.v > 1 else "") + "<br>"
        f"step time: {r.makespan:.3g} t_f (ideal {r.compute_per_stage:.3g} t_f)<br>"
        f"bubble / compute (Narayanan et al.): {r.bubble_ratio:.1%}; "
        f"idle share of the step: {r.idle_fraction:.1%}<br>"
        f"peak micro-batches of activations held, per stage: [{held}]<br>"
        f"point-to-point messages per step: {r.p2p_messages}"
    )
    return r, html


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """:func:`explain` of one setting and its timeline (interleaved with m not a multiple of p
    raises labutils' ValueError, which the calculator shows in red)."""
    r, text = explain(values["name"], values["p"], values["m"], values["v"], values["ratio"],
                      values["p2p"])
    fig = NotebookFigure(figsize=(8, 0.45 * values["p"] + 1.2))
    schedule.plot_schedule(r.events, fig.subplots(), labels=len(r.events) <= 400)
    fig.tight_layout()
    return text, fig


def pipeline_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "130px"}, layout=w.Layout(width="420px"))
    s = dict(d, continuous_update=False)
    controls = {
        "name": w.Dropdown(options=schedule.SCHEDULES, value="1f1b", description="schedule", **d),
        "p": w.IntSlider(value=4, min=1, max=8, description="stages p", **s),
        "m": w.IntSlider(value=8, min=1, max=32, description="micro-batches m", **s),
        "v": w.IntSlider(value=2, min=2, max=4, description="chunks v (interleaved)", **s),
        "ratio": w.FloatSlider(value=2.0, min=0.5, max=4.0, step=0.5, description="t_b / t_f", **s),
        "p2p": w.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="t_p2p / t_f", **s),
    }
    calc = calculator(controls, render, static="pipeline")
    return w.VBox([w.HTML("<b>Pipeline schedule explorer</b> (simulated, times in t_f)"),
                   *controls.values(), calc.text, calc.image])
