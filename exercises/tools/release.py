"""Produce the student release: exercises/release/<assignment>/ (``make exercises``).

    .venv/bin/python exercises/tools/release.py [ASSIGNMENT ...] [--root COURSE_DIR]

Runs ``nbgrader generate_assignment --force`` for each assignment in source/ (this also records
the assignment, its graded cells and their checksums in gradebook.db, which autograding needs),
then checks that no released file contains a solution or hidden-test marker or any line of
solution or hidden-test code from the source. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from _common import HIDDEN_MARKERS, SOLUTION_MARKERS, assignments, leaks, nbgrader_api, report, root_arg


def secret_lines(source_nb: Path) -> set[str]:
    """Code lines of the source that must not reach students: inside SOLUTION or HIDDEN TESTS
    regions (stripped; short lines such as ``return x`` are skipped as too generic)."""
    nb = nbformat.read(str(source_nb), as_version=4)
    out: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.split("\n"):
            s = line.strip()
            if s in (SOLUTION_MARKERS[0], HIDDEN_MARKERS[0]):
                inside = True
            elif s in (SOLUTION_MARKERS[1], HIDDEN_MARKERS[1]):
                inside = False
            elif inside and len(s) >= 20 and not s.startswith("#"):
                out.add(s)
    return out


def check_release(root: Path, assignment: str) -> list[str]:
    """Problems found in release/<assignment>/ (empty when clean)."""
    problems = []
    rel = root / "release" / assignment
    secrets = secret_lines(root / "source" / assignment / f"{assignment}.ipynb")
    files = [p for p in rel.rglob("*") if p.is_file()]
    if not any(p.suffix == ".ipynb" for p in files):
        problems.append(f"{rel}: no notebook released")
    for path in files:
        text = path.read_text(errors="replace")
        problems += leaks(path, text, (*SOLUTION_MARKERS, *HIDDEN_MARKERS), set())
        if path.suffix == ".ipynb":  # compare secrets with the cells' text, not JSON-escaped
            text = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells)
        problems += leaks(path, text, (), secrets)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    ap.add_argument("--root", help="course folder (default: exercises/)")
    args = ap.parse_args(argv)
    root = root_arg(args.root)
    names = args.assignments or assignments(root)
    if not names:
        print(f"no assignments under {root / 'source'}", file=sys.stderr)
        return 1
    api = nbgrader_api(root)
    failed = []
    for name in names:
        ok = report(f"generate_assignment {name}", api.generate_assignment(name, force=True))
        problems = check_release(root, name) if ok else ["nbgrader generate_assignment failed"]
        for p in problems:
            print(f"release {name}: {p}", file=sys.stderr)
        if problems:
            failed.append(name)
        else:
            print(f"released {name} -> {root / 'release' / name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
