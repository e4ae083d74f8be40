"""Tensor-parallel explorer: model width, TP degree, link → per-layer comm, compute, memory.

Every number comes from :mod:`labutils.parallel.tensor.cost` and
:func:`labutils.activations.activation_bytes_per_layer`;
:func:`labutils.widgets.calculator.calculator` wires :func:`report` to the controls.
"""

from __future__ import annotations

import ipywidgets as w

from labutils import hardware
from labutils.activations import activation_bytes_per_layer
from labutils.hardware import LINKS
from labutils.parallel.tensor.cost import tp_layer_cost, tp_weight_bytes_per_layer
from labutils.widgets.calculator import calculator

TP_CHOICES = [1, 2, 4, 8, 16, 32, 64]
WIDTHS = [2048, 4096, 6144, 8192, 12288, 16384, 20480, 25600]  # d_model; heads = d_model / 128
HEAD_DIM = 128  # d_model / heads in the explorer's models (GPT-3's and Llama's head size)
LINK_CHOICES = ("auto (NVSwitch ≤ 8 GPUs, else InfiniBand)", *sorted(LINKS))


def report(d_model: int, tp: int, link_choice: str, seq_len: int = 2048, micro_batch: int = 1,
           accelerator: str = "H100-SXM", mfu: float = 0.5) -> str:
    """HTML lines for one setting (bf16, one layer, one micro-batch)."""
    link = LINKS.get(link_choice)  # None: pick by TP degree
    peak = hardware.get(accelerator).peak_flops("bf16")
    c = tp_layer_cost(seq_len, micro_batch, d_model, tp, peak_flops=peak, mfu=mfu, link=link)
    heads = d_model // HEAD_DIM
    mem = {name: activation_bytes_per_layer(seq_len, micro_batch, d_model, heads, tp=tp,
                                            sequence_parallel=sp) / 1e9
           for name, sp in (("TP", False), ("TP+SP", True))}
    weights_gb = tp_weight_bytes_per_layer(d_model, tp) / 1e9  # bf16 matmul weights
    return (
        f"<b>TP={tp}</b> over <i>{c.link}</i>; h={d_model}, s={seq_len}, b={micro_batch}, "
        f"{accelerator} at MFU {mfu:.0%}<br>"
        f"bytes sent per rank per layer (fwd+bwd): {c.comm_bytes / 1e6:,.1f} MB<br>"
        f"compute per layer: {c.compute_s * 1e3:,.3f} ms; communication: {c.comm_s * 1e3:,.3f} ms<br>"
        f"<b>TP efficiency</b> (compute / total): {c.efficiency:.1%}<br>"
        f"weights per rank per layer (bf16): {weights_gb:.3f} GB<br>"
        f"activations per layer per rank: TP {mem['TP']:.3f} GB, TP+SP {mem['TP+SP']:.3f} GB"
    )


def tensor_parallel_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "120px"}, layout=w.Layout(width="460px"))
    s = dict(d, continuous_update=False)
    controls = {
        "d_model": w.SelectionSlider(options=WIDTHS, value=12288, description="d_model", **s),
        "tp": w.SelectionSlider(options=TP_CHOICES, value=8, description="TP degree", **s),
        "link_choice": w.Dropdown(options=LINK_CHOICES, value=LINK_CHOICES[0], description="link", **d),
        "seq_len": w.SelectionSlider(options=[512, 1024, 2048, 4096, 8192], value=2048,
                                     description="seq_len", **s),
    }
    calc = calculator(controls, lambda v: (report(**v), None), figure=False,
                      static="tensor_parallel",
                      static_data={"report": report, "auto_link": LINK_CHOICES[0],
                                   "head_dim": HEAD_DIM})
    return w.VBox([w.HTML("<b>Tensor-parallel layer explorer</b>"), *controls.values(), calc.text])
