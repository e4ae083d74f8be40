"""labutils.course: the course map matches the design and the lectures folder."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from labutils.course import (CHAPTERS, L0, L3, LECTURE_TITLES, course_map_markdown,
                             lecture_cite)

LECTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "lectures"


def test_chapters_are_numbered_0_to_13() -> None:
    assert [c.number for c in CHAPTERS] == list(range(14))
    assert len({c.notebook for c in CHAPTERS}) == 14
    assert all(c.notebook.startswith(f"{c.number:02d}_") for c in CHAPTERS)


def test_map_lists_every_chapter() -> None:
    text = course_map_markdown()
    assert len(text.splitlines()) == 2 + len(CHAPTERS)
    assert "`notebooks/00_introduction.ipynb`" in text
    assert ".txt" not in text  # lectures are named by number and title, not by file name
    assert "Lecture 4, *Cheatsheet for How To Scale*" in text


@pytest.mark.skipif(not LECTURES.is_dir(), reason="the source lectures are not beside this clone")
def test_cited_lectures_exist() -> None:
    for ch in CHAPTERS:
        for name in ch.lectures:
            assert (LECTURES / name).is_file(), f"chapter {ch.number} cites missing lecture {name}"


def test_lecture_cite_names_number_and_title() -> None:
    assert lecture_cite(L0) == "Lecture 0 (Large Scale Pretrain Overview)"
    assert lecture_cite(L3, "'Quantization: Summary'") == (
        "Lecture 3 (COMSE6998 Lecture 9), 'Quantization: Summary'")
    with pytest.raises(ValueError, match="lecture must be one of"):
        lecture_cite("005_missing.txt")
    with pytest.raises(TypeError, match="where must be a string"):
        lecture_cite(L0, 3)


def test_no_string_shown_to_readers_names_a_lecture_file() -> None:
    """Source strings end up in tables and printouts: they cite lectures by number and title.
    Docstrings and comments (for developers) may name the file."""
    pattern = re.compile(r"\d{3}_[0-9a-f]{16}\.txt")
    root = Path(__file__).resolve().parent.parent / "labutils"
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "course.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                           ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings and pattern.search(node.value)):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert not found, f"cite lectures with labutils.course.lecture_cite: {found}"


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_chapters_cite_lectures_by_number_and_title(path: Path) -> None:
    """'Lecture 2' in the text, 'Lecture 2, *Evaluation of ...*' at least once per chapter;
    never the file name or its bare number (`002`)."""
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells)
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert not re.findall(r"\d{3}_[0-9a-f]{16}\.txt|[Ll]ecture `?00\d|`00\d`", text)
    for name, title in LECTURE_TITLES.items():
        number = title.split(",")[0]
        if re.search(rf"\b{number}\b", markdown):
            assert title in markdown, f"{path.name} cites {number} but never gives its title"
