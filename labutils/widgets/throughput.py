"""Training-run planner (Chapter 3, "throughput, MFU and scalability").

GPUs, GPU type, model size, tokens, MFU, power and price give compute, time, energy and cost.
:func:`render` only formats what :func:`labutils.throughput.project_training` computes, and
:func:`labutils.widgets.calculator.calculator` wires it to the controls.
"""

from __future__ import annotations

import ipywidgets as w

from labutils import hardware
from labutils.throughput import TrainingProjection, project_training
from labutils.widgets.calculator import calculator


def planner_dtype(accelerator: str) -> str:
    """The dtype whose dense peak the planner uses: bf16 where the part has it, else fp16 (V100)."""
    spec = hardware.get(accelerator)
    return "bf16" if "bf16" in spec.dtypes else "fp16"


def planner_projection(
    n_devices: int,
    accelerator: str,
    n_params: float,
    n_tokens: float,
    mfu_fraction: float,
    usd_per_device_hour: float,
    avg_power_w: float | None = None,
) -> TrainingProjection:
    """What the planner shows: :func:`project_training` at the part's bf16 (or fp16) peak."""
    return project_training(
        n_params, n_tokens, n_devices, accelerator, mfu_fraction,
        dtype=planner_dtype(accelerator), avg_power_w=avg_power_w,
        usd_per_device_hour=usd_per_device_hour,
    )


def planner_summary_html(p: TrainingProjection) -> str:
    """An HTML table of a projection (compute, PF/s-days, time, GPU-hours, energy, cost)."""
    rows = [
        ("compute C = 6·N·D", f"{p.compute_flops:.3g} FLOPs"),
        ("in petaflop/s-days", f"{p.petaflop_s_days:,.1f}"),
        ("peak per device (dense)", f"{p.peak_flops_per_device / 1e12:,.0f} TFLOP/s"),
        ("time t = C / (K·F·MFU)", f"{p.time_s / 3600:,.1f} h = {p.time_days:,.2f} days"),
        ("device-hours", f"{p.device_hours:,.0f}"),
        ("energy E = t·K·P_avg", f"{p.energy_mwh:,.2f} MWh (at {p.avg_power_w:,.0f} W/device)"),
        ("cost", f"${p.cost_usd:,.0f}"),
    ]
    body = "".join(f"<tr><td>{k}</td><td style='text-align:right'><b>{v}</b></td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render(values: dict[str, object]) -> tuple[str, None]:
    """The projection table (parameters and tokens given in billions)."""
    p = planner_projection(values["n_devices"], values["accelerator"], values["params_b"] * 1e9,
                           values["tokens_b"] * 1e9, values["mfu_fraction"],
                           values["usd_per_device_hour"], values["avg_power_w"])
    return planner_summary_html(p), None


def planner(
    n_devices: int = 256,
    accelerator: str = "A100-80GB",
    n_params: float = 7e9,
    n_tokens: float = 150e9,
    mfu_fraction: float = 0.35,
    usd_per_device_hour: float = 2.0,
) -> w.VBox:
    """An ipywidgets planner; defaults are the lecture's worked example (7B, 150B tokens, 256
    A100s at 35 % MFU). Power defaults to the chosen part's TDP (editable)."""
    style = {"description_width": "170px"}
    layout = w.Layout(width="480px")
    gpus = w.IntText(value=n_devices, description="GPUs K", style=style, layout=layout)
    gpu = w.Dropdown(options=hardware.names(), value=hardware.get(accelerator).name,
                     description="GPU type", style=style, layout=layout)
    params_b = w.FloatLogSlider(value=n_params / 1e9, base=10, min=-1, max=4, step=0.01,
                                description="parameters N (billions)", style=style, layout=layout)
    tokens_b = w.FloatLogSlider(value=n_tokens / 1e9, base=10, min=0, max=5, step=0.01,
                                description="tokens D (billions)", style=style, layout=layout)
    mfu_w = w.FloatSlider(value=mfu_fraction, min=0.01, max=0.8, step=0.01, description="MFU",
                          style=style, layout=layout)
    power = w.FloatText(value=hardware.get(accelerator).tdp_watts, description="avg power/GPU (W)",
                        style=style, layout=layout)
    price = w.FloatText(value=usd_per_device_hour, description="$ per GPU-hour", style=style,
                        layout=layout)

    def gpu_changed(change: dict) -> None:  # registered before the calculator's re-render
        power.value = hardware.get(change["new"]).tdp_watts

    gpu.observe(gpu_changed, names="value")
    controls = {"n_devices": gpus, "accelerator": gpu, "params_b": params_b, "tokens_b": tokens_b,
                "mfu_fraction": mfu_w, "avg_power_w": power, "usd_per_device_hour": price}
    calc = calculator(controls, render, figure=False, static="throughput")
    return w.VBox([*controls.values(), calc.text])
