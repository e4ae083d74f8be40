"""What a live calculator shows for given settings: the text the static book's JavaScript must
reproduce exactly.

:func:`reference_html` gives, for a calculator of :data:`labutils.widgets.static.CONSTANTS` and
a setting of its controls, the HTML its Python ``render`` shows (a rejected setting as the same
red message). ``tests/test_static_calculators.py`` checks book/_static/calculators/*.js against
it in Node, and ``tests/test_book.py`` in the built book after a control changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from labutils.model import TransformerConfig
from labutils.scaling.law import ChinchillaLaw
from labutils.widgets import (
    context_parallel,
    flops,
    hardware,
    memory,
    pipeline,
    scaling,
    tensor_parallel,
    throughput,
)
from labutils.widgets.calculator import error_html

Text = Callable[[Mapping[str, Any], Mapping[str, Any]], str]

def _scaling_text(values: Mapping[str, Any], consts: Mapping[str, Any]) -> str:
    law = ChinchillaLaw(**consts["laws"][values["law"]])  # the laws travel with the page
    return scaling.summary_html(scaling.explorer_summary(law, 10.0 ** values["log10_c"]))


def _pipeline_text(values: Mapping[str, Any], consts: Mapping[str, Any]) -> str:
    return pipeline.explain(values["name"], values["p"], values["m"], values["v"],
                            values["ratio"], values["p2p"])[1]


def _flops_text(values: Mapping[str, Any], consts: Mapping[str, Any]) -> str:
    cfg = TransformerConfig(  # as labutils.widgets.flops.flops_calculator's render builds it
        vocab_size=values["vocab_size"], seq_len=values["seq_len"], d_model=values["d_model"],
        n_layers=values["n_layers"], n_heads=values["n_heads"], mlp=values["mlp"],
        tied_embeddings=values["tied_embeddings"], name="calculator")
    return flops._html_table(flops.calculator_summary(cfg, 10.0 ** values["log10_tokens"]))


def _render_text(module: ModuleType) -> Text:
    """The text of ``module.render(values)`` (its figure, if any, is drawn and dropped)."""
    return lambda values, consts: module.render(dict(values))[0]


def _report_text(module: ModuleType) -> Text:
    """``module.report(**values)``: the explorers whose controls are report's arguments."""
    return lambda values, consts: module.report(**values)


#: name -> (values, constants) -> the HTML text the live calculator shows for those values.
REFERENCE: dict[str, Text] = {
    "memory": _render_text(memory),
    "throughput": _render_text(throughput),
    "scaling": _scaling_text,
    "tensor_parallel": _report_text(tensor_parallel),
    "context_parallel": _report_text(context_parallel),
    "pipeline": _pipeline_text,
    "hardware": _render_text(hardware),
    "flops": _flops_text,
}


def reference_html(name: str, values: Mapping[str, Any], consts: Mapping[str, Any]) -> str:
    """The text (HTML) labutils' Python calculator ``name`` shows for ``values``; a rejected
    setting gives the same red message as the live calculator. The book's JavaScript must
    produce exactly this string."""
    try:
        return REFERENCE[name](values, consts)
    except (ValueError, TypeError) as err:
        return error_html(err)
