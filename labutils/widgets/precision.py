"""Number-format explorer: pick a format and a value → its bits, the rounded value, the error,
the spacing of neighbouring numbers; and the same value through absmax INT8.

Every number comes from :mod:`labutils.precision` (``round_to_format``, ``bit_string``,
``spacing``, ``max_finite``...) and :mod:`labutils.quantization` (``absmax_quantize``);
:func:`render` only formats and draws, and :func:`labutils.widgets.calculator.calculator` wires it
to the controls (no pyplot, no Output).
"""

from __future__ import annotations

import math

import ipywidgets as w
import torch
from matplotlib.figure import Figure

from labutils import precision
from labutils.quantization import absmax_quantize
from labutils.widgets.calculator import NotebookFigure, calculator


def describe_value(value: float, fmt: str) -> dict[str, object]:
    """What happens to ``value`` in ``fmt``: bits, rounded value, absolute and relative error,
    spacing there, and where it falls (normal, subnormal, flushed to zero, overflow)."""
    f = precision.get_float_format(fmt)
    x = torch.tensor([float(value)], dtype=torch.float64)
    rounded = float(precision.round_to_format(x, f)[0])
    where = (precision.underflow_fractions(torch.tensor([float(value)]), f) if value != 0
             else {"zero": 1.0})
    region = max(where, key=where.get)
    abs_err = abs(rounded - value) if math.isfinite(rounded) else math.inf
    return {"bits": precision.bit_string(value, f), "rounded": rounded, "abs_error": abs_err,
            "rel_error": abs_err / abs(value) if value else 0.0,
            "spacing": precision.spacing(value, f), "region": region}


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """The value in the format (bits, rounding, spacing) and through absmax INT8, and the
    format's bit layout."""
    f = precision.get_float_format(values["fmt"])
    value, absmax = values["value"], values["absmax"]
    r = describe_value(value, f.name)
    # The value quantized together with a tensor whose largest magnitude is ``absmax``.
    x = torch.tensor([value, absmax])
    qt = absmax_quantize(x)
    int8_err = float((x - qt.dequantize()).abs()[0])
    int8_bound = float(qt.error_bound())
    text = (
        f"<b>{f.name}</b>: 1 sign + {f.exponent_bits} exponent + {f.mantissa_bits} mantissa "
        f"bits, bias {f.bias}<br>"
        f"bits of the rounded value: <code>{r['bits']}</code> ({r['region']})<br>"
        f"rounded value: {r['rounded']:.10g}; error {r['abs_error']:.3g} "
        f"(relative {r['rel_error']:.3g}; bound eps/2 = {precision.unit_roundoff(f):.3g} "
        "for normals)<br>"
        f"spacing of {f.name} numbers here: {r['spacing']:.3g}; max {precision.max_finite(f):.6g}, "
        f"smallest normal {precision.smallest_normal(f):.3g}, smallest subnormal "
        f"{precision.smallest_subnormal(f):.3g}<br>"
        f"INT8 absmax in a tensor with max|x| = {max(absmax, abs(value)):.3g}: "
        f"code {int(qt.q[0])}, step {2 * int8_bound:.3g}, error {int8_err:.3g} "
        f"(bound step/2 = {int8_bound:.3g})"
    )
    fig = NotebookFigure(figsize=(8, 1.0))
    ax = fig.subplots()
    precision.plot_layout(ax, f, value)
    ax.set_xlim(-9, 33)
    ax.set_ylim(-0.1, 0.9)
    ax.axis("off")
    return text, fig


def format_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "120px"}, layout=w.Layout(width="420px"))
    controls = {
        "fmt": w.Dropdown(options=precision.FLOAT_FORMATS, value="bf16", description="format", **d),
        "value": w.FloatText(value=3.14159265, description="value", **d),
        "absmax": w.FloatLogSlider(value=4.0, base=10, min=-2, max=3, step=0.1,
                                   description="INT8 absmax", continuous_update=False, **d),
    }
    calc = calculator(controls, render)
    return w.VBox([w.HTML("<b>Number-format explorer</b>"), *controls.values(), calc.text,
                   calc.image])
