"""Scaling-law explorer: pick a compute budget and a law; see N_opt, D_opt, the loss and iso-loss
contours. Chapter 2 (scaling laws) ends with it.

:func:`render` only formats and draws (wired by :func:`labutils.widgets.calculator.calculator`,
no pyplot): every number comes from :class:`labutils.scaling.ChinchillaLaw`
(``compute_optimal``, ``loss``, ``tokens_per_param``), :func:`labutils.scaling.to_pf_days` and
:func:`labutils.scaling.kaplan_compute_optimal`.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labutils.scaling import (
    BESIROGLU_2024,
    HOFFMANN_2022,
    ChinchillaLaw,
    kaplan_compute_optimal,
    to_pf_days,
)
from labutils.widgets.calculator import NotebookFigure, calculator


def explorer_summary(law: ChinchillaLaw, compute_flops: float) -> list[tuple[str, str]]:
    """Rows (quantity, value) the explorer shows for ``law`` at a budget of ``compute_flops``."""
    n_opt, d_opt = law.compute_optimal(compute_flops)
    n_kaplan, d_kaplan = kaplan_compute_optimal(compute_flops)
    return [
        ("compute C", f"{compute_flops:.3g} FLOPs = {to_pf_days(compute_flops):.3g} PF-days"),
        ("N_opt (parameters)", f"{n_opt:.3g}"),
        ("D_opt (tokens)", f"{d_opt:.3g}"),
        ("tokens per parameter", f"{d_opt / n_opt:.1f}"),
        ("predicted loss L(N_opt, D_opt)", f"{law.loss(n_opt, d_opt):.3f} nats/token"),
        ("irreducible E", f"{law.E:.3f} nats/token"),
        ("Kaplan 2020 allocation (N, D)", f"{n_kaplan:.3g}, {d_kaplan:.3g}"),
        ("law", law.source or "(custom)"),
    ]


def plot_iso_loss(law: ChinchillaLaw, compute_flops: float, ax: Axes | None = None) -> Axes:
    """Iso-loss contours of ``law`` in the (N, D) plane, the line C = 6ND and its optimum
    (on a new :class:`~matplotlib.figure.Figure` when ``ax`` is None; ``ax.figure`` is it)."""
    if ax is None:
        ax = NotebookFigure(figsize=(7, 4)).subplots()
    n_opt, d_opt = law.compute_optimal(compute_flops)
    n = np.logspace(np.log10(n_opt) - 2.5, np.log10(n_opt) + 2.5, 120)
    d = np.logspace(np.log10(d_opt) - 2.5, np.log10(d_opt) + 2.5, 120)
    NN, DD = np.meshgrid(n, d)
    L = law.loss(NN, DD)
    levels = np.quantile(L, np.linspace(0.02, 0.9, 12))
    cs = ax.contour(NN, DD, L, levels=np.unique(levels), cmap="viridis", linewidths=1)
    ax.clabel(cs, fmt="%.2f", fontsize=7)
    ax.plot(n, compute_flops / (6 * n), "k--", lw=1, label=f"C = 6ND = {compute_flops:.2g}")
    ax.plot([n_opt], [d_opt], "r*", ms=12, label="compute-optimal")
    ax.set(xscale="log", yscale="log", xlim=(n[0], n[-1]), ylim=(d[0], d[-1]),
           xlabel="parameters N", ylabel="tokens D", title="iso-loss contours (nats/token)")
    ax.legend(loc="lower left", fontsize=8)
    return ax


def summary_html(rows: list[tuple[str, str]]) -> str:
    """An HTML table of :func:`explorer_summary`'s rows."""
    return "<table>" + "".join(
        f"<tr><td style='text-align:left'>{k}</td><td style='text-align:right'><code>{v}</code></td></tr>"
        for k, v in rows) + "</table>"


def scaling_explorer(laws: dict[str, ChinchillaLaw] | None = None, log10_compute: float = 23.0) -> widgets.Widget:
    """A dropdown of laws (default: Hoffmann 2022 and Besiroglu 2024, plus any you pass) and a
    log-compute slider; shows the summary table and the iso-loss plot."""
    options = {"Hoffmann et al. 2022": HOFFMANN_2022, "Besiroglu et al. 2024": BESIROGLU_2024}
    options.update(laws or {})
    for name, law in options.items():
        if not isinstance(law, ChinchillaLaw):
            raise TypeError(f"laws[{name!r}] must be a ChinchillaLaw, got {type(law).__name__}")
    style = {"description_width": "120px"}
    choice = widgets.Dropdown(options=list(options), description="law", style=style)
    compute = widgets.FloatSlider(value=log10_compute, min=9.0, max=28.0, step=0.1,
                                  description="log10 C (FLOPs)", style=style,
                                  layout=widgets.Layout(width="460px"), readout_format=".1f")

    def render(values: dict[str, object]) -> tuple[str, Figure]:
        """The summary table and the iso-loss plot of one law at 10**log10_c FLOPs."""
        law, c = options[values["law"]], 10.0 ** values["log10_c"]
        text = summary_html(explorer_summary(law, c))
        return text, plot_iso_loss(law, c).figure

    calc = calculator({"law": choice, "log10_c": compute}, render, static="scaling",
                      static_data={"laws": options})
    return widgets.VBox([widgets.HBox([choice, compute]), calc.text, calc.image])
