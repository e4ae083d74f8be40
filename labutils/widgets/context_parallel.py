"""Context-parallel explorer: sequence length, CP degree, model shape, link → memory, ring cost.

Every number comes from tested functions: :func:`labutils.attention.score_matrix_bytes`,
:mod:`labutils.parallel.context.cost` (activation bytes per rank, K/V bytes sent, one ring
step's compute vs transfer, the compute-bound tokens per rank) and :mod:`labutils.hardware`;
:func:`labutils.widgets.calculator.calculator` wires :func:`report` to the controls.
"""

from __future__ import annotations

import ipywidgets as w

from labutils import hardware
from labutils.attention import score_matrix_bytes
from labutils.hardware import LINKS
from labutils.parallel.context import cost
from labutils.widgets.calculator import calculator

CP_CHOICES = [1, 2, 4, 8, 16, 32, 64]
SEQ_CHOICES = [2**k for k in range(12, 22)]  # 4k … 2M tokens
D_MODEL_CHOICES = [2048, 4096, 5120, 8192, 16384]


def report(seq_len: int, cp: int, d_model: int, head_dim: int, n_kv_heads: int, accelerator: str,
           link: str, causal: bool = True, mfu: float = 0.5) -> str:
    """HTML lines for one setting (bf16, micro-batch 1, one layer). ``link`` is a key of
    :data:`labutils.hardware.LINKS`."""
    n_heads = d_model // head_dim
    kv = min(n_kv_heads, n_heads)
    spec, lk = hardware.get(accelerator), LINKS[link]
    n = seq_len // cp
    f = 0.5 if causal else 1.0  # a causal zigzag step computes half its block
    step = cost.ring_step(n, d_model, spec.peak_flops("bf16"), lk.bandwidth_bytes_per_s,
                        n_heads=n_heads, n_kv_heads=kv, mfu=mfu, latency_s=lk.latency_s,
                        causal_fraction=f)
    bound = cost.compute_bound_tokens_per_rank(
        spec.peak_flops("bf16"), lk.bandwidth_bytes_per_s, d_model=d_model, n_heads=n_heads,
        n_kv_heads=kv, mfu=mfu, latency_s=lk.latency_s, causal_fraction=f)
    act_flash = cost.cp_activation_bytes_per_layer(seq_len, 1, d_model, n_heads, cp, flash=True)
    act_naive = cost.cp_activation_bytes_per_layer(seq_len, 1, d_model, n_heads, cp, flash=False)
    sent = cost.ring_kv_bytes_per_rank(seq_len, cp, d_model, n_heads, kv)
    verdict = ("<b style='color:green'>hidden</b> (compute-bound)" if step.hidden
               else "<b style='color:firebrick'>exposed</b> (communication-bound)")
    return (
        f"<b>{seq_len:,} tokens on {cp} rank(s)</b>: {n:,} tokens per rank; "
        f"{n_heads} heads of {head_dim}, {kv} K/V heads; {spec.name}, {lk.name} "
        f"({lk.bandwidth_bytes_per_s / 1e9:.0f} GB/s)<br>"
        f"full score matrix, one layer (never materialised with tiling): "
        f"{score_matrix_bytes(seq_len, n_heads) / 1e9:,.1f} GB<br>"
        f"activations per rank per layer: {act_flash / 1e9:,.2f} GB with flash attention, "
        f"{act_naive / 1e9:,.1f} GB keeping the scores "
        f"(GPU memory {spec.memory_bytes / 2**30:.0f} GiB)<br>"
        f"K/V sent per rank per layer (forward): {sent / 1e9:,.3f} GB in {cp - 1} steps<br>"
        f"one ring step: compute {step.compute_s * 1e3:,.3f} ms (MFU {mfu:.0%}) vs transfer "
        f"{step.comm_s * 1e3:,.3f} ms → {verdict}<br>"
        f"compute-bound above <b>{bound:,.0f} tokens per rank</b> "
        f"(sequence ≥ {bound * cp:,.0f} tokens at CP {cp})"
    )


def context_parallel_explorer() -> w.Widget:
    """An ipywidgets panel; display it as the last expression of a notebook cell."""
    d = dict(style={"description_width": "150px"}, layout=w.Layout(width="480px"))
    s = dict(d, continuous_update=False)
    controls = {
        "seq_len": w.SelectionSlider(options=SEQ_CHOICES, value=131072,
                                     description="sequence (tokens)", **s),
        "cp": w.SelectionSlider(options=CP_CHOICES, value=8, description="CP degree", **s),
        "d_model": w.SelectionSlider(options=D_MODEL_CHOICES, value=8192, description="d_model", **s),
        "head_dim": w.SelectionSlider(options=[64, 128, 256], value=128, description="head size", **s),
        "n_kv_heads": w.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64, 128], value=8,
                                        description="K/V heads (GQA)", **s),
        "accelerator": w.Dropdown(options=[n for n in hardware.names()
                                           if "bf16" in hardware.get(n).dtypes],
                                  value="H100-SXM", description="accelerator", **d),
        "link": w.Dropdown(options=sorted(LINKS), value="nvswitch", description="link", **d),
        "causal": w.Checkbox(value=True, description="causal (zigzag: half of each block)"),
        "mfu": w.FloatSlider(value=0.5, min=0.05, max=1.0, step=0.05, description="MFU (attention)", **s),
    }
    # e.g. 40 heads (5120/128) and 16 K/V heads: labutils' ValueError is shown, not crashed
    calc = calculator(controls, lambda v: (report(**v), None), figure=False,
                      static="context_parallel", static_data={"report": report})
    return w.VBox([w.HTML("<b>Context-parallel explorer</b> (ring attention, bf16, one layer)"),
                   *controls.values(), calc.text])
