"""labutils.tables.markdown_table."""

import pytest

from labutils.tables import markdown_table


def test_markdown_table_formats_floats_and_keeps_order() -> None:
    text = markdown_table([{"a": 1.234, "b": "x"}, {"a": 1000.0, "b": 2}], ",.1f")
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1.2 | x |", "| 1,000.0 | 2 |"]


def test_markdown_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="row 1"):
        markdown_table([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="at least one row"):
        markdown_table([])


def test_pipes_in_headers_and_cells_are_escaped():
    # an unescaped | in a header such as "max |Δ loss|" turned whole tables into raw pipe text
    text = markdown_table([{"max |Δ loss|": 0.5, "note": "a|b"}])
    header, rule, row = text.splitlines()
    assert header == r"| max \|Δ loss\| | note |"
    assert row == r"| 0.5 | a\|b |"
    assert rule.count("---") == 2
