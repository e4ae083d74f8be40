"""FLOPs calculator: sliders for a decoder's shape; shows parameters, FLOPs per token and C = 6ND.

Chapter 1 ("transformer FLOPs and parameters") ends with it. The callback only formats: every
number comes from :func:`labutils.model.param_breakdown`, :func:`labutils.flops.flops_per_token`,
:func:`labutils.flops.training_flops` and :func:`labutils.flops.kaplan_flops_per_token`.
"""

from __future__ import annotations

import ipywidgets as widgets

from labutils.flops import (
    attention_share,
    flops_per_token,
    format_flops,
    kaplan_flops_per_token,
    training_compute,
    training_flops,
)
from labutils.model import TransformerConfig, count_params, param_breakdown
from labutils.widgets.calculator import calculator


def calculator_summary(cfg: TransformerConfig, n_tokens: float) -> list[tuple[str, str]]:
    """Rows (quantity, value) the calculator shows for ``cfg`` trained on ``n_tokens`` tokens."""
    parts = param_breakdown(cfg)
    n = count_params(cfg)
    rows = [
        ("parameters N (total)", f"{n:,} ({n / 1e9:.3g}B)"),
        ("  embedding / attention / MLP", f"{parts['embedding']:,} / {parts['attention']:,} / {parts['mlp']:,}"),
        ("  norms / untied head", f"{parts['norm']:,} / {parts['head']:,}"),
        ("MLP hidden width", f"{cfg.ffn_dim:,}"),
        ("training FLOPs/token, without attention (6N over matmul weights)", f"{flops_per_token(cfg, attention=False):.4g}"),
        ("training FLOPs/token, with attention (+12·L·d·T, PaLM)", f"{flops_per_token(cfg):.4g}"),
        ("training FLOPs/token, Kaplan (no head, causal half)", f"{kaplan_flops_per_token(cfg):.4g}"),
        ("attention share of training FLOPs", f"{100 * attention_share(cfg):.1f} %"),
        ("forward FLOPs/token (inference)", f"{flops_per_token(cfg, training=False):.4g}"),
        (f"C for D = {n_tokens:.3g} tokens, exact per-token", format_flops(training_compute(cfg, n_tokens))),
        (f"C ≈ 6·N·D (lecture), D = {n_tokens:.3g}", format_flops(training_flops(n, n_tokens))),
    ]
    return rows


def _html_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td style='text-align:left'>{k}</td><td style='text-align:right'><code>{v}</code></td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def flops_calculator(
    d_model: int = 768, n_layers: int = 12, n_heads: int = 12, seq_len: int = 1024, vocab_size: int = 50257,
    mlp: str = "gelu", log10_tokens: float = 10.0,
) -> widgets.Widget:
    """Sliders for d_model, layers, heads, sequence length, vocabulary, MLP type and token budget.

    Defaults are GPT-2 small. Heads that do not divide d_model show the configuration error
    instead of numbers (the same ValueError the library raises).
    """
    style = {"description_width": "110px"}
    layout = widgets.Layout(width="420px")
    d = widgets.IntSlider(value=d_model, min=64, max=16384, step=64, description="d_model", style=style, layout=layout)
    L = widgets.IntSlider(value=n_layers, min=1, max=128, description="layers", style=style, layout=layout)
    h = widgets.IntSlider(value=n_heads, min=1, max=128, description="heads", style=style, layout=layout)
    T = widgets.IntSlider(value=seq_len, min=128, max=131072, step=128, description="sequence", style=style, layout=layout)
    V = widgets.IntSlider(value=vocab_size, min=256, max=262144, step=1, description="vocab", style=style, layout=layout)
    kind = widgets.ToggleButtons(options=["gelu", "swiglu"], value=mlp, description="MLP", style=style)
    tied = widgets.Checkbox(value=True, description="tied embeddings")
    tokens = widgets.FloatSlider(value=log10_tokens, min=6.0, max=14.0, step=0.1, description="log10 tokens D",
                                 style=style, layout=layout, readout_format=".1f")
    controls = {"d_model": d, "n_layers": L, "n_heads": h, "seq_len": T, "vocab_size": V,
                "mlp": kind, "tied_embeddings": tied, "log10_tokens": tokens}

    def render(values: dict[str, object]) -> tuple[str, None]:
        """The summary table; heads that do not divide d_model raise the config's ValueError."""
        cfg = TransformerConfig(
            vocab_size=values["vocab_size"], seq_len=values["seq_len"], d_model=values["d_model"],
            n_layers=values["n_layers"], n_heads=values["n_heads"], mlp=values["mlp"],
            tied_embeddings=values["tied_embeddings"], name="calculator")
        return _html_table(calculator_summary(cfg, 10.0 ** values["log10_tokens"])), None

    calc = calculator(controls, render, figure=False, static="flops")
    return widgets.HBox([widgets.VBox(list(controls.values())), calc.text])
