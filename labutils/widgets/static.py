"""The static book's copy of a calculator: its controls and constants as JSON, for JavaScript.

In JupyterLab a calculator (:func:`labutils.widgets.calculator.calculator`) recomputes in the
kernel. The static HTML book has no kernel, so the widget there is a frozen snapshot. For the
closed-form calculators the book ships hand-written JavaScript (``book/_static/calculators/``,
one file per calculator, checked against labutils by ``tests/test_static_calculators.py``) that
recomputes in the page. This module writes what that JavaScript needs into the notebook's
output, next to the widget:

* the controls (kind, label, options, range, first value), read from the ipywidgets themselves;
* the constants of the formulas (hardware datasheets, model presets, recipes, links, fitted laws),
  read from labutils, so that the JavaScript holds formulas only and no number is typed twice.

The markup is a ``<div hidden>``: JupyterLab keeps ``hidden`` even when it sanitizes an
untrusted output, so nothing shows there; the book's ``calculators/runtime.js`` reveals it,
builds the controls and hides the widget snapshot. A calculator without a static version
(the muP, precision and training-recipe explorers train or measure with torch; the run planner searches;
the data-parallel explorer simulates bucketed overlap) gets a hidden notice instead, which the
book reveals above its snapshot.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from labutils import hardware
from labutils.hardware import LINKS
from labutils.flops import training_flops, training_multiplier
from labutils.memory import RECIPES
from labutils.model import PRESETS, count_params, preset
from labutils.parallel.tensor import cost as tensor_cost
from labutils.scaling import law as scaling_law
from labutils.throughput import J_PER_MWH, PETAFLOP_S_DAY_FLOPS, S_PER_DAY, S_PER_HOUR

#: The red of a rejected setting (labutils.widgets.calculator.error_html uses the same).
ERROR_STYLE = "color:#b00"
#: How to run a calculator live (HTML), said beside every calculator in the book.
LIVE_HINT = "run the notebook in JupyterLab (<code>make lab</code>)"
#: CSS class of the markup the book's runtime.js looks for.
STATIC_CLASS = "static-calculator"
SNAPSHOT_CLASS = "static-calculator-snapshot"


def _options(w: widgets.Widget) -> list[list[object]]:
    """[[label, value], ...] of a selection widget, as ipywidgets shows them."""
    return [[label, value] for label, value in zip(w._options_labels, w._options_values)]


def control_spec(name: str, w: widgets.Widget) -> dict[str, Any]:
    """What runtime.js needs to draw one control: kind, label, first value, options or range.

    Kinds: ``checkbox``, ``select`` (Dropdown, ToggleButtons), ``choice-slider``
    (SelectionSlider), ``slider`` (IntSlider, FloatSlider), ``log-slider`` (FloatLogSlider: the
    slider moves the exponent), ``number`` (IntText, FloatText)."""
    spec: dict[str, Any] = {"name": name, "label": w.description or name, "value": w.value}
    if isinstance(w, widgets.Checkbox):
        spec["kind"] = "checkbox"
    elif isinstance(w, widgets.SelectionSlider):
        spec.update(kind="choice-slider", options=_options(w))
    elif isinstance(w, (widgets.Dropdown, widgets.ToggleButtons)):
        spec.update(kind="select", options=_options(w))
    elif isinstance(w, widgets.FloatLogSlider):
        spec.update(kind="log-slider", base=w.base, min=w.min, max=w.max, step=w.step,
                    readout_format=w.readout_format)
    elif isinstance(w, (widgets.IntSlider, widgets.FloatSlider)):
        spec.update(kind="slider", min=w.min, max=w.max, step=w.step,
                    integer=isinstance(w, widgets.IntSlider), readout_format=w.readout_format)
    elif isinstance(w, (widgets.IntText, widgets.FloatText)):
        spec.update(kind="number", integer=isinstance(w, widgets.IntText))
    else:
        raise TypeError(f"control {name!r}: no static version of {type(w).__name__}")
    return spec


# ----------------------------------------------------------------------------------------------
# Constants the formulas need, read from labutils (never typed again in JavaScript)
# ----------------------------------------------------------------------------------------------


def _accelerators() -> dict[str, dict[str, Any]]:
    """Every :mod:`labutils.hardware` spec by canonical name (the fields the formulas read)."""
    return {s.name: {"name": s.name, "peak_flops_by_dtype": dict(s.peak_flops_by_dtype),
                     "dtypes": list(s.dtypes), "memory_bytes": s.memory_bytes,
                     "datasheet_memory_gb": s.datasheet_memory_gb,
                     "mem_bandwidth_bytes_per_s": s.mem_bandwidth_bytes_per_s,
                     "tdp_watts": s.tdp_watts, "source": s.source,
                     # html_table formats floats and ints differently: say which these are
                     "int_fields": [f for f in ("datasheet_memory_gb", "tdp_watts")
                                    if isinstance(getattr(s, f), int)]}
            for s in hardware.all_specs()}


def _links() -> dict[str, dict[str, Any]]:
    return {key: {"name": lk.name, "bandwidth_bytes_per_s": lk.bandwidth_bytes_per_s,
                  "latency_s": lk.latency_s} for key, lk in LINKS.items()}


def _link_key(link: object) -> str:
    """The key of ``link`` in :data:`labutils.hardware.LINKS`."""
    return next(key for key, lk in LINKS.items() if lk is link)


def _models() -> dict[str, dict[str, Any]]:
    out = {}
    for key in PRESETS:
        cfg = preset(key)
        out[key] = {"name": cfg.name, "n_params": count_params(cfg), "n_layers": cfg.n_layers,
                    "d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads}
    return out


def _law(law: scaling_law.ChinchillaLaw) -> dict[str, Any]:
    return {k: (v if isinstance(v, str) else float(v)) for k, v in dataclasses.asdict(law).items()}


def _defaults(func: Callable[..., object]) -> dict[str, Any]:
    """The keyword defaults of ``func`` (a report's fixed settings: accelerator, MFU...)."""
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _hex_colors(colors: Mapping[str, str]) -> dict[str, str]:
    """matplotlib colour names ("tab:blue") as the hex an SVG takes."""
    from matplotlib.colors import to_hex

    return {k: to_hex(c) for k, c in colors.items()}


def _memory(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"accelerators": _accelerators(), "models": _models(), "GiB": hardware.GiB,
            "recipes": {k: dataclasses.asdict(r) for k, r in RECIPES.items()},
            "parts": list(extra["parts"]), "colors": _hex_colors(extra["colors"])}


def _throughput(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"accelerators": _accelerators(), "S_PER_HOUR": S_PER_HOUR, "S_PER_DAY": S_PER_DAY,
            "J_PER_MWH": J_PER_MWH, "PETAFLOP_S_DAY_FLOPS": PETAFLOP_S_DAY_FLOPS,
            "FLOPS_PER_PARAM_TOKEN": training_flops(1.0, 1.0)}


def _scaling(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"laws": {name: _law(law) for name, law in extra["laws"].items()},
            "FLOPS_PER_PARAM_TOKEN": scaling_law.FLOPS_PER_PARAM_TOKEN,
            "PF_DAY_FLOPS": scaling_law.PF_DAY_FLOPS,
            "KAPLAN_N_OPT_COEFF": scaling_law.KAPLAN_N_OPT_COEFF,
            "KAPLAN_N_OPT_EXPONENT": scaling_law.KAPLAN_N_OPT_EXPONENT}


def _tensor_parallel(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"accelerators": _accelerators(), "links": _links(),
            "defaults": _defaults(extra["report"]), "AUTO_LINK": extra["auto_link"],
            "HEAD_DIM": extra["head_dim"],
            "TRAINING_MULTIPLIER": training_multiplier(),
            # link_for_tp's defaults: NVSwitch up to a node's GPUs, InfiniBand beyond
            "GPUS_PER_NODE": tensor_cost.GPUS_PER_NODE,
            "INTRA_LINK": _link_key(tensor_cost.NVSWITCH),
            "INTER_LINK": _link_key(tensor_cost.INFINIBAND),
            "ALL_REDUCES_PER_LAYER": sum(tensor_cost.ALL_REDUCES_PER_LAYER.values())}


def _context_parallel(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"accelerators": _accelerators(), "links": _links(),
            "defaults": _defaults(extra["report"])}


def _hardware(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"accelerators": _accelerators(), "GiB": hardware.GiB}


def _flops(extra: Mapping[str, Any]) -> dict[str, Any]:
    from labutils.flops import FLOPS_PER_MAC, SI_PREFIXES, training_multiplier

    return {"FLOPS_PER_MAC": FLOPS_PER_MAC, "TRAINING_MULTIPLIER": training_multiplier(),
            "SI_PREFIXES": [list(p) for p in SI_PREFIXES]}


def _pipeline(extra: Mapping[str, Any]) -> dict[str, Any]:
    from labutils.parallel.pipeline.schedule import COLORS

    return {"colors": _hex_colors(COLORS)}


#: Calculators with a static version: name -> the constants its JavaScript reads. The name is
#: also the file ``book/_static/calculators/<name>.js``.
CONSTANTS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "memory": _memory,
    "throughput": _throughput,
    "scaling": _scaling,
    "tensor_parallel": _tensor_parallel,
    "context_parallel": _context_parallel,
    "pipeline": _pipeline,
    "hardware": _hardware,
    "flops": _flops,
}


def constants(name: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The constants calculator ``name`` needs (``extra``: ones only the caller knows, such as
    the scaling explorer's laws, the memory bar's parts and colours, or a report function whose
    keyword defaults are the fixed settings; passed in, so that this module imports no widget)."""
    if name not in CONSTANTS:
        raise ValueError(f"static must be one of {sorted(CONSTANTS)} or None, got {name!r}")
    return CONSTANTS[name](extra or {})


def payload(name: str, controls: Mapping[str, widgets.Widget],
            extra: Mapping[str, Any] | None = None, figure_png: bytes = b"") -> dict[str, Any]:
    """Everything runtime.js reads for one calculator: its name, controls, constants, the PNG
    Python drew for the first setting (base64, "" for none) and how to run it live."""
    return {"calculator": name, "controls": [control_spec(k, w) for k, w in controls.items()],
            "constants": constants(name, extra), "live_hint": LIVE_HINT,
            "figure_png": base64.b64encode(figure_png).decode("ascii"),
            "error_style": ERROR_STYLE}


def _json_for_script(obj: object) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</`` can close it)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")


def static_markup(data: Mapping[str, Any]) -> str:
    """The hidden ``<div>`` the book's runtime.js turns into a live calculator."""
    return (f"<div hidden class='{STATIC_CLASS}' data-calculator='{html.escape(data['calculator'])}'>"
            f"<script type='application/json'>{_json_for_script(data)}</script></div>")


def snapshot_markup() -> str:
    """The hidden notice the book reveals above a calculator that only runs in a kernel."""
    return (f"<div hidden class='{SNAPSHOT_CLASS}'><b>Snapshot.</b> This calculator runs in "
            f"Python only, so the book shows its first setting: moving its controls below "
            f"recomputes nothing here. To use it, {LIVE_HINT}.</div>")


def show(markup: str) -> None:
    """Display ``markup`` as an HTML output of the running cell (nothing outside a kernel)."""
    from IPython import get_ipython
    from IPython.display import HTML, display

    if get_ipython() is not None:
        display(HTML(markup))
