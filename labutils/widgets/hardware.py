"""Hardware explorer: pick an accelerator and a dtype, read its datasheet and its roofline.

Everything shown comes from :mod:`labutils.hardware`; :func:`render` only formats and draws, and
:func:`labutils.widgets.calculator.calculator` wires it to the controls (no pyplot, no Output).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from labutils import hardware
from labutils.widgets.calculator import NotebookFigure, calculator, html_table


def roofline_figure(names: list[str], dtype: str = "bf16") -> Figure:
    """Log-log roofline (attainable FLOP/s against FLOPs per byte) for each named part.

    Not a pyplot figure: show it with ``display(fig)`` (or as a cell's last expression), not
    pyplot's ``show``."""
    intensity = np.logspace(-1, 4, 200)  # FLOPs per byte
    fig = NotebookFigure(figsize=(7, 4))
    ax = fig.subplots()
    for name in names:
        spec = hardware.get(name)
        if dtype not in spec.dtypes:
            continue
        ax.loglog(intensity, [spec.attainable_flops(x, dtype) / 1e12 for x in intensity],
                  label=f"{spec.name} (ridge {spec.ridge_point(dtype):.0f} FLOP/B)")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of HBM traffic)")
    ax.set_ylabel(f"attainable {dtype} TFLOP/s (dense)")
    ax.set_title(f"Roofline, {dtype}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def datasheet_html(name: str, dtype: str) -> str:
    """An HTML table of ``name``'s :meth:`summary` for ``dtype`` (floats to one decimal), and
    its source."""
    spec = hardware.get(name)
    table = html_table(list(spec.summary(dtype).items()), header=("quantity", "value"))
    return f"{table}<p>Source: {html.escape(spec.source)}</p>"


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """The datasheet and roofline of ``values["device"]`` in ``values["dtype"]``."""
    spec = hardware.get(values["device"])
    if values["dtype"] not in spec.dtypes:
        raise ValueError(f"dtype must be one of {spec.name}'s {spec.dtypes}, got {values['dtype']!r}")
    return datasheet_html(spec.name, values["dtype"]), roofline_figure([spec.name], values["dtype"])


def hardware_explorer(default: str = "H100-SXM", dtype: str = "bf16") -> widgets.Widget:
    """A dropdown of accelerators and dtypes showing the datasheet and the roofline."""
    device = widgets.Dropdown(options=hardware.names(), value=hardware.get(default).name,
                              description="accelerator")
    dtype_box = widgets.Dropdown(options=hardware.get(default).dtypes, value=dtype,
                                 description="dtype")

    def follow_device(change: dict) -> None:  # keep the dtype list valid for this part
        dtypes = hardware.get(change["new"]).dtypes
        keep = dtype_box.value if dtype_box.value in dtypes else (
            "bf16" if "bf16" in dtypes else dtypes[-1])
        # New options reset the selection to the first one: hold the re-render until the kept
        # dtype is back, and send the list and the choice to the page as one message.
        with calc.hold(), dtype_box.hold_sync():
            dtype_box.options = dtypes
            dtype_box.value = keep

    device.observe(follow_device, names="value")  # runs before the calculator's re-render
    calc = calculator({"device": device, "dtype": dtype_box}, render, static="hardware")
    return widgets.VBox([widgets.HBox([device, dtype_box]), calc.text, calc.image])
