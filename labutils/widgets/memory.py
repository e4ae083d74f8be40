"""Memory calculator: will this model train on this GPU with this recipe and layout?

Every number comes from :func:`labutils.memory.device_memory_breakdown` (model states with ZeRO,
activations after Korthikanti et al. 2022) and :mod:`labutils.hardware` (device memory); the
callbacks only format and plot.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from labutils import hardware
from labutils.memory import RECIPES, device_memory_breakdown
from labutils.model import PRESETS, count_params, preset

PARTS = ("params", "grads", "optimizer", "activations")
COLORS = {"params": "tab:blue", "grads": "tab:orange", "optimizer": "tab:green",
          "activations": "tab:red"}


def memory_figure(breakdown: dict[str, int], gpu: str, title: str = "") -> plt.Figure:
    """One stacked bar (GB = 1e9 bytes per device) against the line of ``gpu``'s usable memory
    (``labutils.hardware``'s ``memory_bytes``, labelled in GB and GiB)."""
    spec = hardware.get(gpu)
    fig, ax = plt.subplots(figsize=(5, 4))
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
    out = widgets.Output()

    def render(*_: object) -> None:
        with out:
            out.clear_output(wait=True)
            cfg = preset(w["model"].value)
            try:
                b = device_memory_breakdown(
                    count_params(cfg), n_layers=cfg.n_layers, d_model=cfg.d_model,
                    n_heads=cfg.n_heads, seq_len=w["seq_len"].value,
                    micro_batch=w["micro_batch"].value, recipe=w["recipe"].value,
                    zero_stage=w["zero_stage"].value, dp=w["dp"].value, tp=w["tp"].value,
                    pp=w["pp"].value, sequence_parallel=w["sequence_parallel"].value,
                    recompute=w["recompute"].value)
            except ValueError as err:  # e.g. TP that does not divide the heads
                display(Markdown(f"**Not a valid layout:** {err}"))
                return
            ok = fits(b, w["gpu"].value)
            cap = hardware.get(w["gpu"].value).memory_bytes
            verdict = "fits" if ok else "does NOT fit"
            display(Markdown(f"**{cfg.name or w['model'].value}** ({count_params(cfg) / 1e9:.2f}B "
                             f"parameters): {b['total'] / 1e9:.1f} GB per device, {verdict} in "
                             f"{cap / 1e9:.1f} GB = {cap / hardware.GiB:.1f} GiB "
                             f"({100 * b['total'] / cap:.0f} %; GB = 1e9 bytes, GiB = 2**30)."))
            fig = memory_figure(b, w["gpu"].value, f"{verdict} ({w['gpu'].value})")
            display(fig)
            plt.close(fig)

    for box in w.values():
        box.observe(render, names="value")
    render()
    left = widgets.VBox([w[k] for k in ("model", "recipe", "zero_stage", "dp", "tp", "pp")])
    right = widgets.VBox([w[k] for k in ("micro_batch", "seq_len", "recompute", "sequence_parallel", "gpu")])
    return widgets.VBox([widgets.HBox([left, right]), out])
