"""Write per-student HTML feedback to exercises/feedback/ (``make feedback``; run after grading).

    .venv/bin/python exercises/tools/feedback.py [ASSIGNMENT ...] [--root COURSE_DIR]

Runs ``nbgrader generate_feedback`` for every autograded submission, giving
``feedback/<student>/<assignment>/<assignment>.html``. Our config adds ``HideHiddenTests``
(hidden-test source and the tracebacks of those cells are replaced by a pass/fail summary).
Then every HTML file is made self-contained: ``<script src=http...>`` and ``<link href=http...>``
tags (MathJax and require.js from CDNs in nbconvert's template) are removed, and any other
http(s) ``src``/``href`` attribute is neutralised. The script checks the result and exits
non-zero if a file still loads from the network or shows a hidden-test line.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat

from _common import HIDDEN_MARKERS, assignments, leaks, nbgrader_api, report, root_arg

_REMOTE = r"""(?:https?:)?//"""
SCRIPT_RE = re.compile(r"<script\b[^>]*\bsrc\s*=\s*['\"]?" + _REMOTE + r"[^>]*>.*?</script\s*>",
                       re.IGNORECASE | re.DOTALL)
LINK_RE = re.compile(r"<link\b[^>]*\bhref\s*=\s*['\"]?" + _REMOTE + r"[^>]*>", re.IGNORECASE)
ATTR_RE = re.compile(r"""\b(src|href)\s*=\s*(['"]?)""" + _REMOTE, re.IGNORECASE)
REMOTE_ATTR_RE = re.compile(r"""\b(?:src|href)\s*=\s*['"]?(?:https?:)?//""", re.IGNORECASE)


def make_offline(text: str) -> str:
    """Remove remote scripts and stylesheets; point any other remote src/href nowhere."""
    text = SCRIPT_RE.sub("", text)
    text = LINK_RE.sub("", text)
    return ATTR_RE.sub(lambda m: f"data-removed-{m.group(1).lower()}={m.group(2)}", text)


def hidden_lines(source_nb: Path) -> set[str]:
    """Lines inside hidden-test regions of the source (stripped, non-trivial)."""
    nb = nbformat.read(str(source_nb), as_version=4)
    out, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.split("\n"):
            s = line.strip()
            if s == HIDDEN_MARKERS[0]:
                inside = True
            elif s == HIDDEN_MARKERS[1]:
                inside = False
            elif inside and len(s) >= 12:
                out.add(s)
    return out


def check_feedback(path: Path, secrets: set[str]) -> list[str]:
    """Problems in one feedback file: remote loads, hidden-test markers or lines."""
    text = path.read_text(errors="replace")
    problems = [f"{path}: loads {m.group(0)!r}" for m in REMOTE_ATTR_RE.finditer(text)]
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))  # highlighted code is split by <span>s
    return problems + leaks(path, plain, HIDDEN_MARKERS, secrets, what="hidden line")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("assignments", nargs="*", help="default: every autograded assignment")
    ap.add_argument("--root", help="course folder (default: exercises/)")
    args = ap.parse_args(argv)
    root = root_arg(args.root)
    graded = root / "autograded"
    names = args.assignments or [a for a in assignments(root) if list(graded.glob(f"*/{a}"))]
    if not names:
        print(f"nothing autograded under {graded}; run grade.py first", file=sys.stderr)
        return 1
    api = nbgrader_api(root)
    problems: list[str] = []
    for name in names:
        report(f"generate_feedback {name}", api.generate_feedback(name, "*", force=True))
        secrets = hidden_lines(root / "source" / name / f"{name}.ipynb")
        files = sorted((root / "feedback").glob(f"*/{name}/*.html"))
        for path in files:
            path.write_text(make_offline(path.read_text()))
            problems += check_feedback(path, secrets)
        print(f"feedback {name}: {len(files)} file(s) under {root / 'feedback'}/<student>/{name}/")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
