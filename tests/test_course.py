"""labutils.course: the course map matches the design and the lectures folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from labutils.course import CHAPTERS, course_map_markdown

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
