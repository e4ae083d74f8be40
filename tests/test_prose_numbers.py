"""Numbers in the chapters' prose are glued from code or cited, never typed (issue: every number true).

A number a code cell computes reaches a markdown cell through myst-nb's ``glue`` (a
``{glue:text}`key``` role), so prose cannot drift from code. A number from a paper or lecture carries
its source in the same sentence ({cite}, "Table", "Sec.", "Lecture N", a link...). This test scans
every markdown cell for numbers with a unit or a percent sign that are neither, sentence by
sentence. What remains is a short allow-list of reviewed phrases, per notebook, each with a reason.

Run ``python tests/test_prose_numbers.py [notebook-substring]`` to list what the scan finds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# A unit or a percent sign after a number: sizes (7B, 500k), bytes, FLOPs, bandwidth, time, energy, counts.
_UNIT = (r"(?:%|×|k?GB/s|TB/s|GiB|MiB|KiB|GB|MB|TB|KB|kB|PB|[TPGEZ]?FLOP/?s?|[TPGEZ]FLOPs|FLOPs?|"
         r"[kKMBT]\b|ms\b|µs\b|us\b|ns\b|s\b|min\b|seconds?\b|minutes?\b|hours?\b|days?\b|years?\b|"
         r"W\b|kW\b|MW\b|tokens?\b|parameters?\b|params\b|bytes?\b|bits?\b|GPUs?\b|nodes?\b|steps?\b)")
_NUMBER = re.compile(r"(?<![\w.\-^_{/])(\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)\s?" + _UNIT)
# A source named in the same sentence.
_CITATION = re.compile(r"\{cite|\bTable\b|\bTab\.|\bSec\.|§|\bFig\.|\bFigure\b|\bLecture\b|\bEq\.|\bApp\.|"
                       r"\bAppendix\b|\bAlgorithm\b|datasheet|\]\(http", re.IGNORECASE)


def _masked(text: str) -> str:
    """The prose with glued values, inline code, math and link targets replaced by placeholders."""
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*`", " GLUED ", text)
    text = re.sub(r"```.*?```", " CODE ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", " MATH ", text)
    text = re.sub(r"\]\((?!http)[^)]*\)", "]", text)  # local link targets (file names, anchors)
    return text


def _sentences(text: str) -> list[str]:
    """Sentences, list items and table rows: the unit a citation must share with its number."""
    parts = re.split(r"(?<=[.;!?])\s+(?=[A-Z(*])|\n(?=\s*(?:[-*+]|\d+\.|\|)\s)|\n\n", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def typed_numbers(notebook: Path) -> list[tuple[int, str, str]]:
    """(markdown cell index, number with unit, its sentence) for every typed, uncited number."""
    cells = json.loads(notebook.read_text())["cells"]
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence in _sentences(_masked("".join(cell["source"]))):
            if _CITATION.search(sentence):
                continue
            found.extend((index, m.group(0), sentence) for m in _NUMBER.finditer(sentence))
    return found


# Reviewed exceptions, per notebook: a phrase that must appear in the flagged sentence, and why it
# may stay typed. Keep this short; prefer glue or a citation.
ALLOWED: dict[str, list[tuple[str, str]]] = {
}


def _allowed(notebook: Path, sentence: str) -> bool:
    return any(phrase in sentence for phrase, _why in ALLOWED.get(notebook.stem, []))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_prose_numbers_are_glued_or_cited(notebook: Path):
    typed = [(i, number, s) for i, number, s in typed_numbers(notebook) if not _allowed(notebook, s)]
    report = "\n".join(f"  cell {i}: {number!r} in: {s[:160]}" for i, number, s in typed)
    assert not typed, (f"{notebook.name}: {len(typed)} typed numbers; glue them from the code that "
                       f"computes them, or cite their source in the same sentence:\n{report}")


def test_allow_list_entries_are_all_used():
    """An allow-list entry that matches nothing is stale: remove it."""
    for stem, entries in ALLOWED.items():
        notebook = next((p for p in NOTEBOOKS if p.stem == stem), None)
        assert notebook is not None, f"allow-list names a notebook that does not exist: {stem}"
        sentences = [s for _i, _n, s in typed_numbers(notebook)]
        for phrase, _why in entries:
            assert any(phrase in s for s in sentences), f"{stem}: stale allow-list entry {phrase!r}"


def test_scanner_finds_typed_numbers_and_spares_glued_and_cited(tmp_path: Path):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [text]} for text in (
        "The step takes 3.2 s on this machine.",                       # typed: flagged
        "The step takes {glue:text}`step_s:.1f` s on this machine.",   # glued: fine
        "GPT-3 trained on 300B tokens ({cite}`brown2020gpt3`).",       # cited: fine
        "Chinchilla's Table 3 gives 1.4T tokens.",                     # cited by table: fine
        "Memory is `16 * N` bytes, i.e. $16N$ bytes.",                 # code and math: fine
        "At 40 % MFU it takes 12 days. Next sentence has no number.",  # two typed numbers
    )]
    nb = tmp_path / "probe.ipynb"
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    found = [(i, number) for i, number, _s in typed_numbers(nb)]
    assert found == [(0, "3.2 s"), (5, "40 %"), (5, "12 days")]


if __name__ == "__main__":
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    total = 0
    for nb in NOTEBOOKS:
        if wanted not in nb.stem:
            continue
        hits = [(i, n, s) for i, n, s in typed_numbers(nb) if not _allowed(nb, s)]
        total += len(hits)
        print(f"{nb.name}: {len(hits)}")
        for i, number, sentence in hits:
            print(f"  cell {i}: {number!r}: {sentence[:150]}")
    print(f"total {total}")
