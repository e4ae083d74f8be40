"""Markdown tables for notebook outputs (rendered as tables in JupyterLab and in the book)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _escape(text: str) -> str:
    """A cell's text with ``|`` escaped, so that ``max |Δ|`` stays inside its column."""
    return text.replace("|", r"\|")


def _cell(value: object, floatfmt: str) -> str:
    if isinstance(value, float):
        return format(value, floatfmt)
    return _escape(str(value))


def markdown_table(rows: Sequence[Mapping[str, object]], floatfmt: str = ",.1f") -> str:
    """Render ``rows`` (dicts sharing the first row's keys) as a Markdown table.

    Floats are formatted with ``floatfmt``; everything else with ``str``. A ``|`` in a header or a
    cell is escaped (``\\|``), so it renders as a character, not as a column break.
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if not rows:
        raise ValueError("rows must hold at least one row")
    bad = [i for i, row in enumerate(rows) if not isinstance(row, Mapping)]
    if bad:
        raise TypeError(f"rows must be a list of dicts; row {bad[0]} is {type(rows[bad[0]]).__name__}")
    if not isinstance(floatfmt, str):
        raise TypeError(f"floatfmt must be a format spec string such as ',.1f', got {floatfmt!r}")
    try:
        format(1.0, floatfmt)
    except ValueError:
        raise ValueError(f"floatfmt must be a float format spec such as ',.1f', got "
                         f"{floatfmt!r}") from None
    header = list(rows[0])
    lines = ["| " + " | ".join(_escape(str(h)) for h in header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        if list(row) != header:
            raise ValueError(f"row {i} has keys {list(row)}, expected {header}")
        lines.append("| " + " | ".join(_cell(v, floatfmt) for v in row.values()) + " |")
    return "\n".join(lines)
