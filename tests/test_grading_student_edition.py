"""``make student``: the student edition holds no solution, hidden test, answer key or
instructor file (exercises/tools/student_edition.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "exercises" / "tools"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("edition") / "student"
    proc = subprocess.run([sys.executable, str(TOOLS / "student_edition.py"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_edition_has_chapters_labutils_assignments_and_readme(edition):
    sources = sorted(p.name for p in (REPO / "exercises" / "source").iterdir() if p.is_dir())
    assert sorted(p.name for p in (edition / "assignments").iterdir()) == sources
    for a in sources:
        assert (edition / "assignments" / a / f"{a}.ipynb").is_file()
    assert (edition / "labutils" / "grading.py").is_file() and (edition / "README.md").is_file()
    assert {p.name for p in (REPO / "notebooks").glob("*.ipynb")} == \
        {p.name for p in (edition / "notebooks").glob("*.ipynb")}


def test_edition_leaks_nothing(edition):
    sys.path.insert(0, str(TOOLS))
    try:
        import student_edition
    finally:
        sys.path.remove(str(TOOLS))
    assert student_edition.check(edition) == []
    everything = "\n".join(p.read_text(errors="replace") for p in edition.rglob("*")
                           if p.is_file() and p.suffix in (".py", ".ipynb", ".md"))
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "expected_answers", "_ANSWERS"):
        assert marker not in everything, marker
    assert not list(edition.rglob("answer_key.py")) and not (edition / "exercises").exists()


def test_chapter_pointers_name_the_released_assignment(edition):
    text = (edition / "notebooks" / "01_flops.ipynb").read_text()
    assert "exercises/source" not in text
    assert "assignments/01_flops/01_flops.ipynb" in text


def test_the_leak_check_catches_a_planted_solution(edition, tmp_path):
    sys.path.insert(0, str(TOOLS))
    try:
        import student_edition
    finally:
        sys.path.remove(str(TOOLS))
    planted = tmp_path / "copy"
    (planted / "assignments").mkdir(parents=True)
    (planted / "assignments" / "x.py").write_text("### BEGIN HIDDEN TESTS\nfrom answer_key import expected_answers\n")
    problems = student_edition.check(planted)
    assert any("BEGIN HIDDEN TESTS" in p for p in problems) and any("answer_key" in p for p in problems)


def test_a_solution_line_that_labutils_holds_is_an_error(edition, tmp_path):
    # A student edition whose labutils re-types a solution line fails the check (it used to be a
    # warning only): the line is taken from the sources, planted in a copy of labutils.
    sys.path.insert(0, str(TOOLS))
    try:
        import student_edition
    finally:
        sys.path.remove(str(TOOLS))
    secret = sorted(student_edition.secret_lines())[0]
    planted = tmp_path / "copy"
    (planted / "labutils").mkdir(parents=True)
    (planted / "labutils" / "schedules.py").write_text(f"def f():\n    {secret}\n")
    problems = student_edition.check(planted)
    assert problems == [f"labutils/schedules.py: holds the solution line {secret!r}"]
    assert student_edition.retyped(edition) == [], "the real labutils holds no solution line"
