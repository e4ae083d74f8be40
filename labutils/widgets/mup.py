"""muP table explorer: base and target width, depth, batch and data ratios → every layer's init
std, multiplier, AdamW LR, betas, ε and weight decay, under SP and under muP.

Every number comes from :func:`labutils.mup.hyperparam_table` (through
:func:`labutils.mup.table_rows`); :func:`render` only formats and draws, and
:func:`labutils.widgets.calculator.calculator` wires it to the controls (no pyplot, no Output).
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from matplotlib.figure import Figure

from labutils.mup import OptimizerHyperparams, hyperparam_table, mup, sp, table_rows
from labutils.widgets.calculator import NotebookFigure, calculator, figure_png


def html_table(rows: list[dict[str, str]]) -> str:
    """A small HTML table of :func:`labutils.mup.table_rows` output."""
    head = "".join(f"<th style='padding:2px 8px'>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{v}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<table style='font-size:90%'><tr>{head}</tr>{body}</table>"


def lr_by_width_figure(base_width: int, base_head_dim: int, n_layers: int,
                       opt: OptimizerHyperparams, target_width: int | None = None,
                       max_width: int = 16384) -> Figure:
    """PNG of the hidden and readout AdamW LR and effective init scale (std × multiplier)
    against target width under muP, with SP's single flat value for every layer, and the
    chosen target width marked."""
    widths = np.unique(np.geomspace(base_width, max(max_width, 2 * base_width), 24).astype(int))
    fig = NotebookFigure(figsize=(9, 3.2))
    ax_lr, ax_std = fig.subplots(1, 2)
    muP = [hyperparam_table(mup(base_width, base_head_dim, zero_init=False), int(wd), n_layers, opt)
           for wd in widths]
    for i, kind in enumerate(("hidden", "readout")):
        ax_lr.plot(widths, [t[kind].lr for t in muP], color=f"C{i}", label=f"muP {kind}")
        ax_std.plot(widths, [t[kind].init_std * t[kind].multiplier for t in muP], color=f"C{i}",
                    label=f"muP {kind}")
    # SP gives hidden and readout the same LR and the same std at every width: one line each.
    sp_table = hyperparam_table(sp(base_width, base_head_dim), base_width, n_layers, opt)
    ax_lr.axhline(sp_table["hidden"].lr, color="k", ls="--", lw=1, label="SP, every layer")
    ax_std.axhline(sp_table["hidden"].init_std, color="k", ls="--", lw=1, label="SP, every layer")
    for ax in (ax_lr, ax_std):
        if target_width is not None:
            ax.axvline(target_width, color="gray", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="target width d_model")
    ax_lr.set(ylabel="AdamW LR", title="learning rate by width")
    ax_std.set(ylabel="init std × multiplier", title="effective init scale by width")
    ax_lr.legend(fontsize=7)
    fig.tight_layout()
    return fig


def lr_by_width_png(base_width: int, base_head_dim: int, n_layers: int,
                    opt: OptimizerHyperparams, target_width: int | None = None,
                    max_width: int = 16384) -> bytes:
    """:func:`lr_by_width_figure` as PNG bytes."""
    return figure_png(lr_by_width_figure(base_width, base_head_dim, n_layers, opt, target_width,
                                         max_width))


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """The table of every layer's hyperparameters at the target width, and LR/init by width.

    labutils' ValueErrors (a target below the base, b̃(1-β) >= 1...) reach the calculator,
    which shows them in red."""
    head_dim = max(1, values["base"] // values["heads"])
    opt = OptimizerHyperparams(lr=values["lr"], batch_ratio=values["b_ratio"],
                               data_ratio=values["d_ratio"], alpha_data=values["alpha"])
    p = (mup(values["base"], head_dim, zero_init=values["zero"]) if values["kind"] == "muP"
         else sp(values["base"], head_dim))
    rows = table_rows(p, values["target"], values["layers"], opt)
    ratio = values["target"] / values["base"]
    text = (f"<b>{values['kind']}</b>, ñ = {ratio:.3g}, b̃ = {values['b_ratio']:g}, "
            f"d̃ = {values['d_ratio']:.3g}<br>" + html_table(rows))
    fig = lr_by_width_figure(values["base"], head_dim, values["layers"], opt, values["target"])
    return text, fig


def mup_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "140px"}, layout=w.Layout(width="400px"),
             continuous_update=False)
    controls = {
        "base": w.IntSlider(value=256, min=64, max=2048, step=64, description="base width", **d),
        "target": w.IntSlider(value=4096, min=64, max=16384, step=64, description="target width", **d),
        "heads": w.IntSlider(value=4, min=1, max=64, description="base heads", **d),
        "layers": w.IntSlider(value=24, min=1, max=128, description="layers L", **d),
        "lr": w.FloatLogSlider(value=1e-2, base=10, min=-5, max=-1, description="base LR η", **d),
        "b_ratio": w.FloatSlider(value=1.0, min=0.25, max=16.0, step=0.25,
                                 description="batch ratio b̃", **d),
        "d_ratio": w.FloatLogSlider(value=1.0, base=10, min=0, max=3, description="data ratio d̃", **d),
        "alpha": w.FloatSlider(value=0.0, min=-0.3, max=0.0, step=0.01, description="α_data", **d),
        "kind": w.ToggleButtons(options=["muP", "SP"], value="muP", description="parametrization"),
        "zero": w.Checkbox(value=True, description="zero init (muP)"),
    }
    calc = calculator(controls, render)
    c = list(controls.values())
    return w.VBox([w.HTML("<b>muP table explorer</b>: what each layer of the target gets"),
                   w.HBox([w.VBox(c[:4] + [c[8]]), w.VBox(c[4:8] + [c[9]])]),
                   calc.text, calc.image])
