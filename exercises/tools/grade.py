"""Autograde every submission into the gradebook and write exercises/grades.csv (``make grade``).

    .venv/bin/python exercises/tools/grade.py [ASSIGNMENT ...] [--root COURSE_DIR]
        [--cell-timeout S] [--notebook-timeout S] [--csv PATH]

Submissions live in ``submitted/<student_id>/<assignment>/<assignment>.ipynb`` (the folder name
is the student id; an optional ``timestamp.txt`` holds the submission time). For each
assignment with submissions, this script

1. records the assignment in gradebook.db if it is not there yet (``generate_assignment``);
2. runs ``nbgrader autograde --force`` on all of its students in one call, with our
   ``StudentExecute`` (per-cell timeout, whole-notebook cap, the student id from the folder).
   That run only *collects*: the ``answer_*`` values as JSON, and the notebook's sources;
3. scores every part in the clean grader (``clean_check.py``: a separate process per
   submission, which runs the instructor's tests on plain data and calls the student's functions
   in a sandbox process), and writes those scores into the gradebook and the autograded notebook;
4. writes one CSV row per (assignment, student) from the gradebook: total score, maximum,
   status, audit flags and the score of every graded part.

A submission whose notebook cannot be graded at all (for example its kernel died) keeps its
row with score 0 and status ``autograde_failed``. Grading the same submissions twice writes the
same CSV (rows sorted, no wall-clock times).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from _common import TOOLS, assignments, nbgrader_api, report, root_arg, submissions
from nbgrader_ext import COLLECT_MARKER

COLUMNS = ["assignment", "student_id", "score", "max_score", "status", "flags", "timestamp", "parts"]

# Student-editable code that reaches into the grading machinery (reported for a human to read).
AUDIT_PATTERNS = {
    "env": re.compile(r"LABUTILS_STUDENT_ID|NBGRADER_EXECUTION|JUPYTERHUB_USER"),
    "grading-internals": re.compile(r"_GRADER_STUDENT_ID|_AUTOGRADING|check_answer|labutils_references"
                                    r"|expected_answers|answer_key|exercises/tools|_lab_collect"
                                    r"|student_params|student_seed|student_id\s*\("
                                    r"|grading\s*\.\s*\w+\s*=[^=]|labutils(?:\s*\.\s*\w+)+\s*=[^=]"
                                    r"|setattr\s*\("),
    "module-tampering": re.compile(r"sys\s*\.\s*modules|importlib|builtins|__import__|get_ipython"
                                   r"|events\s*\.\s*register|settrace|setprofile"),
}


def audit(notebook: Path) -> list[str]:
    """Audit flags for the student-editable cells of a submitted notebook (sorted)."""
    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable notebook is itself worth a flag
        return ["unreadable"]
    flags = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("locked") or meta.get("grade"):
            continue  # locked and test cells are restored from the source by nbgrader
        for name, pattern in AUDIT_PATTERNS.items():
            if pattern.search(cell.source):
                flags.add(name)
    return sorted(flags)


def _cell_order(source_nb: Path) -> dict[str, int]:
    """grade_id -> position in the source notebook (so CSV parts follow the notebook)."""
    nb = nbformat.read(str(source_nb), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return {gid: i for i, gid in enumerate(ids) if gid}


def _fmt(x: float) -> str:
    return f"{x:g}"


def gradebook_rows(root: Path, assignment: str, students: list[str]) -> list[dict]:
    """CSV rows for ``students`` of ``assignment``, read from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    db_url = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        a = gb.find_assignment(assignment)
        max_by_part = {}
        for nb in a.notebooks:
            for gc in nb.grade_cells:
                max_by_part[gc.name] = float(gc.max_score)
        order = _cell_order(root / "source" / assignment / f"{assignment}.ipynb")
        max_by_part = dict(sorted(max_by_part.items(), key=lambda kv: (order.get(kv[0], 1e9), kv[0])))
        max_score = sum(max_by_part.values())
        for student in students:
            notebook = root / "submitted" / student / assignment / f"{assignment}.ipynb"
            graded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
            parts = {name: 0.0 for name in max_by_part}
            status, timestamp = "ok", ""
            try:
                sub = gb.find_submission(assignment, student)
                timestamp = sub.timestamp.isoformat() if sub.timestamp else ""
                for nb in sub.notebooks:
                    for g in nb.grades:
                        parts[g.name] = float(g.score or 0.0)
            except MissingEntry:
                status = "autograde_failed"
            if not notebook.is_file():
                status = "missing_notebook"
            elif not graded.is_file():
                status = "autograde_failed"
            if status != "ok":
                parts = {name: 0.0 for name in parts}
            flags = audit(notebook) if notebook.is_file() else []
            rows.append({
                "assignment": assignment,
                "student_id": student,
                "score": _fmt(sum(parts.values())),
                "max_score": _fmt(max_score),
                "status": status,
                "flags": ";".join(flags),
                "timestamp": timestamp,
                "parts": ";".join(f"{k}={_fmt(v)}/{_fmt(max_by_part[k])}" for k, v in parts.items()),
            })
    return rows


# ---------------------------------------------------------------------------------------------
# Clean grading: scores come from clean_check.py, never from the student's kernel
# ---------------------------------------------------------------------------------------------


def collected_answers(nb) -> tuple[dict, dict]:
    """(answers, rejected) printed by the collector cell (the last marker line), or empty."""
    for cell in reversed(nb.cells):
        for out in reversed(cell.get("outputs", [])):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            lines = [ln for ln in text.split("\n") if ln.startswith(COLLECT_MARKER)]
            if lines:
                try:
                    data = json.loads(lines[-1][len(COLLECT_MARKER):])
                    return dict(data.get("answers", {})), dict(data.get("rejected", {}))
                except (ValueError, AttributeError, TypeError):
                    return {}, {}
    return {}, {}


def impl_sources(nb) -> dict[str, str]:
    """grade_id -> source of each implementation cell (``*_impl``) of a submission."""
    out = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and isinstance(gid, str) and gid.endswith("_impl"):
            out[gid] = cell.source
    return out


def _graded_ids(source_nb: Path) -> list[str]:
    nb = nbformat.read(str(source_nb), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


def clean_results(root: Path, assignment: str, student: str, *, call_timeout_s: float,
                  total_timeout_s: float) -> dict[str, dict] | None:
    """``{grade_id: {"passed", "message"}}`` from clean_check.py; None without an autograded
    notebook (nbgrader could not process the submission)."""
    graded = root / "autograded" / student / assignment / f"{assignment}.ipynb"
    source = root / "source" / assignment / f"{assignment}.ipynb"
    if not graded.is_file():
        return None
    nb = nbformat.read(str(graded), as_version=4)
    ids = _graded_ids(source)
    if any(o.get("ename") == "StudentIdMismatch" for c in nb.cells for o in c.get("outputs", [])):
        return {g: {"passed": False, "message": f"this notebook did not run as student {student!r}"} for g in ids}
    answers, rejected = collected_answers(nb)
    job = {"assignment": assignment, "student": student, "source_nb": str(source),
           "impl_sources": impl_sources(nb), "answers": answers, "rejected": rejected,
           "call_timeout_s": call_timeout_s}
    with tempfile.TemporaryDirectory(prefix="clean-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job))
        try:
            proc = subprocess.run([sys.executable, "-I", str(TOOLS / "clean_check.py"), str(job_path),
                                   str(out_path)], capture_output=True, text=True, timeout=total_timeout_s,
                                  cwd=tmp)
            failure = None if proc.returncode == 0 else f"the clean grader failed: {proc.stderr[-300:]}"
        except subprocess.TimeoutExpired:
            failure = f"grading took over {total_timeout_s:.0f} s"
        if failure is None:
            results = json.loads(out_path.read_text())
            return {g: results.get(g, {"passed": False, "message": "not graded"}) for g in ids}
    print(f"{assignment}/{student}: {failure}", file=sys.stderr)
    return {g: {"passed": False, "message": failure} for g in ids}


def apply_results(root: Path, assignment: str, student: str, results: dict[str, dict]) -> None:
    """Write the clean scores into the gradebook, and each test cell's verdict (no hidden line,
    no expected value) into the autograded notebook that feedback is made from."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return
        for nb in sub.notebooks:
            for g in nb.grades:
                r = results.get(g.name)
                g.auto_score = float(g.max_score) if r and r["passed"] else 0.0
        gb.db.commit()
    path = root / "autograded" / student / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        r = results.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if r is not None and cell.metadata["nbgrader"].get("grade"):
            verdict = "passed (public and hidden tests)" if r["passed"] else f"failed: {r['message']}"
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"clean grader: {verdict}\n")]
    nbformat.write(nb, str(path))


def clean_grade(root: Path, assignment: str, students: list[str], *, call_timeout_s: float,
                total_timeout_s: float, workers: int = 2) -> None:
    """Score every student of ``assignment`` with clean_check.py (``workers`` at a time)."""
    def one(student: str) -> dict[str, dict] | None:
        return clean_results(root, assignment, student, call_timeout_s=call_timeout_s,
                             total_timeout_s=total_timeout_s)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        all_results = list(pool.map(one, students))
    for student, results in zip(students, all_results):  # one gradebook writer at a time
        if results is not None:
            apply_results(root, assignment, student, results)


def write_csv(rows: list[dict], path: Path) -> None:
    rows = sorted(rows, key=lambda r: (r["assignment"], r["student_id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)  # atomic: an interrupted run never leaves a half-written gradebook CSV


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("assignments", nargs="*", help="default: every assignment with submissions")
    ap.add_argument("--root", help="course folder (default: exercises/)")
    ap.add_argument("--csv", help="output CSV (default: <root>/grades.csv)")
    ap.add_argument("--cell-timeout", type=float, default=None, help="seconds per cell (default 60)")
    ap.add_argument("--notebook-timeout", type=float, default=None,
                    help="seconds per notebook (default 600)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print nbgrader's log")
    args = ap.parse_args(argv)
    root = root_arg(args.root)
    names = args.assignments or [a for a in assignments(root) if submissions(root, a)]
    if not names:
        print(f"no submissions under {root / 'submitted'}/<student>/<assignment>/; nothing to grade")
        return 0
    api = nbgrader_api(root, cell_timeout_s=args.cell_timeout, notebook_timeout_s=args.notebook_timeout)
    rows = []
    for name in names:
        students = submissions(root, name)
        if not students:
            print(f"{name}: no submissions under {root / 'submitted'}/*/{name}/")
            continue
        if not (root / "release" / name).is_dir() or not _in_gradebook(root, name):
            report(f"generate_assignment {name}", api.generate_assignment(name, force=True))
        # One call grades every student; a student whose notebook fails is logged and skipped,
        # the others are still graded (their rows come from the gradebook either way).
        report(f"autograde {name}", api.autograde(name, "*", force=True, create=True),
               verbose=args.verbose)
        clean_grade(root, name, students, call_timeout_s=args.cell_timeout or 60.0,
                    total_timeout_s=args.notebook_timeout or 600.0)
        rows += gradebook_rows(root, name, students)
        print(f"graded {name}: {len(students)} submission(s)")
    out = Path(args.csv) if args.csv else root / "grades.csv"
    if rows:
        # Keep the rows of assignments not graded in this run (grades are never lost).
        if out.is_file() and args.assignments:
            with out.open(newline="") as fh:
                rows += [r for r in csv.DictReader(fh) if r["assignment"] not in names]
        write_csv(rows, out)
        print(f"wrote {out} ({len(rows)} rows)")
    return 0


def _in_gradebook(root: Path, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    db = root / "gradebook.db"
    if not db.is_file():
        return False
    with Gradebook(f"sqlite:///{db}") as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
