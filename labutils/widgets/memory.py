"""Memory calculator: will this model train on this GPU with this recipe and layout?

Every number comes from :func:`labutils.memory.device_memory_breakdown` (model states with ZeRO,
activations after Korthikanti et al. 2022) and :mod:`labutils.hardware` (device memory);
:func:`render` only formats and draws, and :func:`labutils.widgets.calculator.calculator` wires it
to the controls (no pyplot, no Output).
"""

from __future__ import annotations

import ipywidgets as widgets
from matplotlib.figure import Figure

from labutils import hardware
from labutils.memory import RECIPES, device_memory_breakdown
from labutils.model import PRESETS, count_params, preset
from labutils.widgets.calculator import NotebookFigure, calculator

PARTS = ("params", "grads", "optimizer", "activations")
COLORS = {"params": "tab:blue", "grads": "tab:orange", "optimizer": "tab:green",
          "activations": "tab:red"}


def memory_figure(breakdown: dict[str, int], gpu: str, title: str = "") -> Figure:
    """One stacked bar (GB = 1e9 bytes per device) against the line of ``gpu``'s usable memory
    (``labutils.hardware``'s ``memory_bytes``, labelled in GB and GiB)."""
    spec = hardware.get(gpu)
    fig = NotebookFigure(figsize=(5, 4))
    ax = fig.subplots()
    bottom = 0.0
    for part in PARTS:
        gb = breakdown[part] / 1e9
        ax.bar(["per device"], [gb], bottom=bottom, color=COLORS[part], label=f"{part} {gb:.1f} GB")
        bottom += gb
    cap = spec.memory_bytes / 1e9  # usable capacity from labutils.hardware, in GB (1e9 bytes)
    ax.axhline(cap, color="black", linestyle="--",
               label=f"{spec.name}: {cap:.1f} GB = {spec.memory_bytes / hardware.GiB:.1f} GiB")
    ax.set_ylabel("GB (1e9 bytes)")
    ax.set_ylim(0, max(bottom, cap) * 1.15)
    ax.set_title(title or "memory per device")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def fits(breakdown: dict[str, int], gpu: str) -> bool:
    """True when the total fits in ``gpu``'s memory (no allowance for fragmentation)."""
    return breakdown["total"] <= hardware.get(gpu).memory_bytes


def breakdown_for(values: dict[str, object]) -> dict[str, int]:
    """:func:`device_memory_breakdown` of the calculator's setting (bytes per device)."""
    cfg = preset(values["model"])
    return device_memory_breakdown(
        count_params(cfg), n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_kv_heads, seq_len=values["seq_len"], micro_batch=values["micro_batch"], recipe=values["recipe"],
        zero_stage=values["zero_stage"], dp=values["dp"], tp=values["tp"], pp=values["pp"],
        sequence_parallel=values["sequence_parallel"], recompute=values["recompute"])


def render(values: dict[str, object]) -> tuple[str, Figure]:
    """The verdict line (GB = 1e9 bytes, GiB = 2**30) and the stacked bar of one setting.

    A layout labutils rejects (say, TP that does not divide the heads) raises its ValueError,
    which the calculator shows in red."""
    cfg = preset(values["model"])
    b = breakdown_for(values)
    gpu = values["gpu"]
    cap = hardware.get(gpu).memory_bytes
    verdict = "fits" if fits(b, gpu) else "does NOT fit"
    text = (f"<b>{cfg.name or values['model']}</b> ({count_params(cfg) / 1e9:.2f}B parameters): "
            f"{b['total'] / 1e9:.1f} GB per device, {verdict} in {cap / 1e9:.1f} GB = "
            f"{cap / hardware.GiB:.1f} GiB ({100 * b['total'] / cap:.0f} %; GB = 1e9 bytes, "
            f"GiB = 2**30).")
    return text, memory_figure(b, gpu, f"{verdict} ({gpu})")


def memory_calculator(model: str = "llama-7b", gpu: str = "A100-80GB") -> widgets.Widget:
    """Sliders and dropdowns for model, precision/optimizer, ZeRO stage, DP, TP, PP, micro-batch,
    sequence length and recomputation; shows the stacked bar and whether it fits."""
    style = {"description_width": "110px"}
    w = {
        "model": widgets.Dropdown(options=sorted(PRESETS), value=model, description="model", style=style),
        "recipe": widgets.Dropdown(options=list(RECIPES), value="mixed_adam",
                                   description="precision/opt", style=style),
        "zero_stage": widgets.Dropdown(options=[0, 1, 2, 3], value=1, description="ZeRO stage", style=style),
        "dp": widgets.Dropdown(options=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], value=8,
                               description="DP", style=style),
        "tp": widgets.Dropdown(options=[1, 2, 4, 8], value=1, description="TP", style=style),
        "pp": widgets.Dropdown(options=[1, 2, 4, 8], value=1, description="PP", style=style),
        "micro_batch": widgets.Dropdown(options=[1, 2, 4, 8, 16], value=1, description="micro-batch",
                                        style=style),
        "seq_len": widgets.Dropdown(options=[512, 1024, 2048, 4096, 8192], value=2048,
                                    description="sequence", style=style),
        "recompute": widgets.Dropdown(options=["none", "selective", "full"], value="selective",
                                      description="recompute", style=style),
        "sequence_parallel": widgets.Checkbox(value=False, description="sequence parallel"),
        "gpu": widgets.Dropdown(options=hardware.names(), value=hardware.get(gpu).name,
                                description="GPU", style=style),
    }
    calc = calculator(w, render, static="memory",
                      static_data={"parts": PARTS, "colors": COLORS})
    left = widgets.VBox([w[k] for k in ("model", "recipe", "zero_stage", "dp", "tp", "pp")])
    right = widgets.VBox([w[k] for k in ("micro_batch", "seq_len", "recompute", "sequence_parallel", "gpu")])
    return widgets.VBox([widgets.HBox([left, right]), calc.text, calc.image])
