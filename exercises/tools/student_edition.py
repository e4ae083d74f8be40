"""Build the student edition: what an instructor hands out (``make student``).

    .venv/bin/python exercises/tools/student_edition.py [--out DIR]
        # default: exercises/release/student-edition/ (ignored by git)

The edition holds the chapter notebooks, the ``labutils`` package (per-student parameters only:
no answer key), the released assignments (``assignments/NN_topic/NN_topic.ipynb``, from a
temporary ``nbgrader generate_assignment``), ``pyproject.toml`` and a README for students
(``exercises/STUDENT_README.md``). Nothing from ``exercises/`` itself: no source notebooks, no
assignment specs, no answer key, no grader. In the copied chapters, the pointer to an
assignment's instructor source is rewritten to the released notebook.

Then it checks the result and exits non-zero on any leak: a ``BEGIN SOLUTION`` or
``BEGIN HIDDEN TESTS`` marker, any line of solution or hidden-test code from the sources
(anywhere, ``labutils`` included: a part whose answer the package holds line for line is an
error), the answer key's names, or a file from the instructor's tree.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import release
from _common import EXERCISES, REPO, assignments

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
KEY_WORDS = ("expected_answers", "_ANSWERS", "answer_key", "_answers_")
POINTER = re.compile(r"`exercises/source/(\d\d_[a-z0-9_]+)/`(?: \(released to students by `make exercises`\))?")


def _release_all(tmp: Path) -> Path:
    """Release every assignment into ``tmp`` (a copy of source/); returns tmp/release."""
    shutil.copytree(EXERCISES / "source", tmp / "source")
    if release.main(["--root", str(tmp)]) != 0:
        raise RuntimeError("releasing the assignments failed")
    return tmp / "release"


def _copy_chapters(out: Path) -> None:
    (out / "notebooks").mkdir(parents=True)
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        text = POINTER.sub(lambda m: f"`assignments/{m.group(1)}/{m.group(1)}.ipynb`", nb.read_text())
        (out / "notebooks" / nb.name).write_text(text)
    for extra in sorted((REPO / "notebooks").iterdir()):
        if extra.is_dir() and not extra.name.startswith((".", "_")):
            shutil.copytree(extra, out / "notebooks" / extra.name, ignore=IGNORE)


def build(out: Path) -> list[str]:
    """Write the edition into ``out`` (replaced); returns the problems found (empty: clean)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _copy_chapters(out)
    shutil.copytree(REPO / "labutils", out / "labutils", ignore=IGNORE)
    shutil.copy2(REPO / "pyproject.toml", out / "pyproject.toml")
    shutil.copy2(EXERCISES / "STUDENT_README.md", out / "README.md")
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        released = _release_all(Path(tmp))
        for a in assignments(EXERCISES):
            shutil.copytree(released / a, out / "assignments" / a, ignore=IGNORE)
    return check(out)


def secret_lines() -> set[str]:
    """Solution and hidden-test lines of every source notebook (see release.secret_lines)."""
    out: set[str] = set()
    for a in assignments(EXERCISES):
        out |= release.secret_lines(EXERCISES / "source" / a / f"{a}.ipynb")
    return out


def check(out: Path) -> list[str]:
    """Leaks in an edition folder: markers, solution or hidden-test lines, key names, files
    of the instructor's tree."""
    import nbformat

    problems = []
    secrets = secret_lines()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel.startswith(("exercises/", "source/")) or "/tools/" in rel:
            problems.append(f"{rel}: instructor file")
        if path.suffix not in (".py", ".ipynb", ".md", ".toml", ".txt", ".json", ".cfg"):
            continue
        text = path.read_text(errors="replace")
        problems += [f"{rel}: contains {m!r}" for m in MARKERS + KEY_WORDS if m in text]
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
        if not rel.startswith("labutils/"):  # see retyped(): labutils is checked apart
            problems += [f"{rel}: contains solution/hidden line {s!r}" for s in sorted(secrets) if s in text]
    return problems + retyped(out, secrets)


def retyped(out: Path, secrets: set[str] | None = None) -> list[str]:
    """Solution or hidden-test lines that ``labutils`` in the edition contains verbatim: an
    implementation part whose answer a student could copy out of the package. Every such part
    must ask for a variant the package does not hold (see exercises/README.md)."""
    secrets = secret_lines() if secrets is None else secrets
    found = []
    for path in sorted((out / "labutils").rglob("*.py")) if (out / "labutils").is_dir() else []:
        text = path.read_text()
        found += [f"{path.relative_to(out).as_posix()}: holds the solution line {s!r}"
                  for s in sorted(secrets) if s in text]
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(EXERCISES / "release" / "student-edition"),
                    help="output folder (default: exercises/release/student-edition/)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    problems = build(out)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"student edition in {out}: notebooks/, labutils/, assignments/, README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
