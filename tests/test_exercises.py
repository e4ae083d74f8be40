"""The graded exercises end to end: release, autograde fabricated submissions, feedback.

One temporary course folder (a copy of exercises/source/) is released, then graded once with
every fabricated submission of every assignment, so nbgrader and the kernels start as few times
as possible. Submissions, per assignment:

* ``ref``: the instructor's source notebook (solutions and hidden tests) -> full marks;
* ``stub``: the released notebook, untouched -> 0 on every part;
* ``crash``: the first implementation raises, everything else is correct -> only that part lost.

and for 01_flops also:

* ``wrong``: every answer wrong, and pages of garbage printed -> 0;
* ``hang``: Part 2's function loops forever -> the per-cell timeout cuts it off; only Part 2 lost;
* ``tamper``: wrong implementations, with test cells edited, deleted, re-weighted and a fake
  graded cell added -> no points from the tampering (nbgrader restores locked cells);
* ``copycat``: alice's numeric answers typed in by another student -> 0 on napkin parts;
* ``spoofer``: a cell before the setup claims alice's id through the environment -> 0 everywhere;
* ``killer``: the napkin cell kills the kernel -> earlier parts graded, later ones 0;
* ``nosetup``: the locked setup cell deleted and re-typed under alice's id -> 0 everywhere;
* ``patcher``: the answer checker monkeypatched in a student cell -> 0 on napkin parts, flagged;

and for every assignment ``liar``: float-subclass answers and a rebound ``grading`` -> 0 on
napkin parts, full marks on the honest implementation parts.

and for 13_kernels (a Triton kernel) also:

* ``unmasked``: the kernel stores past the end of its output -> Part 1 lost, the notebook lives;
* ``torchcopy``: the launcher runs the kernel but returns a PyTorch result -> Part 1 lost.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labutils import grading

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exercises" / "tools"))
import answer_key  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "exercises"
TOOLS = EXERCISES / "tools"
ASSIGNMENTS = sorted(p.name for p in (EXERCISES / "source").iterdir()
                     if (p / f"{p.name}.ipynb").is_file())
# Assignments whose notebooks need an optional package: without it their reference cannot score.
NEEDS = {"13_kernels": "triton"}  # Triton ships wheels for Linux x86-64 only
GRADED = [pytest.param(a, marks=pytest.mark.skipif(
              a in NEEDS and importlib.util.find_spec(NEEDS[a]) is None,
              reason=f"{NEEDS.get(a)} is not installed"))
          for a in ASSIGNMENTS]
CELL_TIMEOUT_S = 20  # generous for a loaded 2-core machine; the hang costs one of these
FIRST = "01_flops"  # the assignment that gets the full set of fabricated submissions
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*['"]?(?:https?:)?//""", re.IGNORECASE)


def run_tool(script: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(TOOLS / script), *args], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{script} {args} failed:\n{out.stdout}\n{out.stderr[-4000:]}"
    return out


def regions(text: str, begin: str, end: str) -> list[str]:
    """Stripped, non-trivial lines inside begin/end marker regions."""
    out, inside = [], False
    for line in text.split("\n"):
        s = line.strip()
        if s == begin:
            inside = True
        elif s == end:
            inside = False
        elif inside and len(s) >= 12 and not s.startswith("#"):
            out.append(s)
    return out


def source_nb(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(str(EXERCISES / "source" / assignment / f"{assignment}.ipynb"), as_version=4)


def gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def replace_solution(cell, new_body: str, region: int | None = None) -> None:
    """Replace the ### BEGIN/END SOLUTION regions of a cell with ``new_body`` (same indent); with
    ``region``, only that one (0 = the first)."""
    lines, out, inside, k = cell.source.split("\n"), [], False, -1
    for line in lines:
        if line.strip() == "### BEGIN SOLUTION":
            k += 1
            if region is None or k == region:
                inside = True
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + b for b in new_body.split("\n")]
                continue
        if line.strip() == "### END SOLUTION" and inside:
            inside = False
        elif not inside:
            out.append(line)
    cell.source = "\n".join(out)


def answers_of(cell) -> list[str]:
    return re.findall(r"^(answer_\w+)\s*=", cell.source, re.MULTILINE)


def parts_after(nb, solution_id: str) -> list[str]:
    """grade_ids of the test cells that follow a solution cell, up to the next solution cell."""
    ids = [(gid(c), c.metadata.get("nbgrader", {})) for c in nb.cells if gid(c)]
    idx = [i for i, (g, _) in enumerate(ids) if g == solution_id][0]
    out = []
    for g, meta in ids[idx + 1:]:
        if meta.get("solution"):
            break
        if meta.get("grade"):
            out.append(g)
    return out


def impl_cells(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution") and gid(c).endswith("_impl")]


def napkin_cell(nb):
    return [c for c in nb.cells if gid(c) == "napkin"][0]


# ---------------------------------------------------------------------------------------------
# Fabricated submissions
# ---------------------------------------------------------------------------------------------


def fab_crash(a: str):
    nb = source_nb(a)
    replace_solution(impl_cells(nb)[0], 'raise RuntimeError("boom")')
    return nb


def fab_wrong(a: str):
    nb = source_nb(a)
    for c in impl_cells(nb):
        replace_solution(c, 'print("garbage " * 50)\nreturn -1')
    garbage = "for _i in range(5000):\n    print('#' * 80, _i)"
    replace_solution(napkin_cell(nb), garbage + "\n" + "\n".join(f"{v} = 1.0" for v in answers_of(napkin_cell(nb))))
    return nb


def fab_hang(a: str):
    nb = source_nb(a)
    replace_solution(impl_cells(nb)[1], "while True:\n    pass")
    return nb


def fab_tamper(a: str):
    nb = source_nb(a)
    for c in impl_cells(nb):
        replace_solution(c, "return 0")
    first_tests = parts_after(nb, gid(impl_cells(nb)[0]))[0]
    second_tests = parts_after(nb, gid(impl_cells(nb)[1]))[0]
    napkins = parts_after(nb, "napkin")
    cells = []
    for c in nb.cells:
        if gid(c) == first_tests:
            c.source = "pass  # tests edited away"
        elif gid(c) == second_tests:
            continue  # deleted
        elif gid(c) == napkins[0]:
            c.metadata["nbgrader"]["points"] = 100
            c.metadata["nbgrader"]["locked"] = False
        elif gid(c) == napkins[1]:
            del c.metadata["nbgrader"]  # demoted to a plain cell
            c.source = "pass"
        cells.append(c)
    fake = nbformat.v4.new_code_cell("pass  # a bonus")
    fake.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 50,
                                 "grade_id": "bonus", "schema_version": 3, "task": False}
    cells.append(fake)
    nb.cells = cells
    return nb


def fab_copycat(a: str, victim: str):
    """The source with the napkin answers typed in as ``victim``'s numbers."""
    nb = source_nb(a)
    ans = answer_key.expected_answers(a, grading.student_params(victim, a))
    cell = napkin_cell(nb)
    keys = {v: v.removeprefix("answer_") for v in answers_of(cell)}
    alias = {"answer_amdahl_speedup": "amdahl_speedup"}
    body = "\n".join(f"{v} = {ans[alias.get(v, k)]!r}" for v, k in keys.items())
    replace_solution(cell, body)
    for c in nb.cells:
        if "MY_ID =" in c.source and not c.metadata.get("nbgrader"):
            c.source = f'MY_ID = "{victim}"'
    return nb


def fab_spoofer(a: str, victim: str):
    nb = source_nb(a)
    spoof = nbformat.v4.new_code_cell(f'import os\nos.environ["LABUTILS_STUDENT_ID"] = "{victim}"')
    nb.cells.insert(0, spoof)
    return nb


def fab_nosetup(a: str, victim: str):
    """The setup cell deleted, replaced by an unlocked copy run under ``victim``'s id."""
    nb = source_nb(a)
    i = [k for k, c in enumerate(nb.cells) if gid(c) == "setup"][0]
    body = nb.cells[i].source
    nb.cells[i] = nbformat.v4.new_code_cell(
        f'import os\nos.environ["LABUTILS_STUDENT_ID"] = "{victim}"\n' + body)
    return nb


def fab_patcher(a: str):
    """Wrong napkin answers, and the answer checker patched away."""
    nb = source_nb(a)
    cell = napkin_cell(nb)
    replace_solution(cell, "\n".join(f"{v} = 1.0" for v in answers_of(cell)))
    cell.source = "from labutils import grading\ngrading.check_answer = lambda *a, **k: None\n" + cell.source
    return nb


LIAR = """class _Liar(float):
    def __eq__(self, other):
        return True
    __le__ = __ge__ = __lt__ = __gt__ = __eq__
    def __sub__(self, other):
        return _Liar(0.0)
    __rsub__ = __sub__
    def __abs__(self):
        return _Liar(0.0)
grading = type("_Anything", (), {"__getattr__": lambda s, n: (lambda *a, **k: [])})()"""


def fab_liar(a: str):
    """Every napkin answer a float subclass whose comparisons always hold, and ``grading``
    rebound to no-ops (the issue's 12/12 attack); the implementations are the solution's."""
    nb = source_nb(a)
    cell = napkin_cell(nb)
    replace_solution(cell, LIAR + "\n" + "\n".join(f"{v} = _Liar(1.0)" for v in answers_of(cell)))
    return nb


def fab_killer(a: str):
    nb = source_nb(a)
    replace_solution(napkin_cell(nb), "import os\nos._exit(1)")
    return nb


KERNELS = "13_kernels"  # its Part 1 is a Triton kernel: a launcher region after a kernel region
UNMASKED_KERNEL = """pid = tl.program_id(0)
offs = pid * BLOCK + tl.arange(0, BLOCK)
tl.store(out_ptr + offs, alpha * tl.maximum(tl.load(x_ptr + offs), 0.0))"""
TORCH_LAUNCHER = """out = torch.empty_like(x)
scaled_relu_kernel[(triton.cdiv(x.numel(), block),)](x, out, x.numel(), alpha, BLOCK=block)
return alpha * torch.relu(x)  # the kernel ran, but its result is thrown away"""


def fab_kernel(a: str, region: int, body: str):
    """The source with one region of the kernel cell (0: kernel, 1: launcher) replaced."""
    nb = source_nb(a)
    cell = impl_cells(nb)[0]
    assert cell.source.count("### BEGIN SOLUTION") == 2, "Part 1: a kernel region, a launcher region"
    replace_solution(cell, body, region)
    return nb


def submit(root: Path, student: str, a: str, nb) -> None:
    d = root / "submitted" / student / a
    d.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(d / f"{a}.ipynb"))
    (d / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")


# ---------------------------------------------------------------------------------------------
# The course, released and graded once for the whole module
# ---------------------------------------------------------------------------------------------


def read_csv(path: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    for r in csv.DictReader(io.StringIO(path.read_text())):
        r["part_scores"] = {k: float(v.split("/")[0]) for k, v in
                            (p.split("=") for p in r["parts"].split(";"))}
        r["part_max"] = {k: float(v.split("/")[1]) for k, v in
                         (p.split("=") for p in r["parts"].split(";"))}
        rows[(r["assignment"], r["student_id"])] = r
    return rows


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(EXERCISES / "source", root / "source")
    run_tool("release.py", "--root", str(root))
    for a in ASSIGNMENTS:
        submit(root, "ref", a, source_nb(a))
        submit(root, "stub", a, nbformat.read(str(root / "release" / a / f"{a}.ipynb"), as_version=4))
        submit(root, "crash", a, fab_crash(a))
        submit(root, "liar", a, fab_liar(a))
    victim = "alice"
    submit(root, "wrong", FIRST, fab_wrong(FIRST))
    submit(root, "hang", FIRST, fab_hang(FIRST))
    submit(root, "tamper", FIRST, fab_tamper(FIRST))
    submit(root, "copycat", FIRST, fab_copycat(FIRST, victim))
    submit(root, "spoofer", FIRST, fab_spoofer(FIRST, victim))
    submit(root, "killer", FIRST, fab_killer(FIRST))
    submit(root, "nosetup", FIRST, fab_nosetup(FIRST, victim))
    submit(root, "patcher", FIRST, fab_patcher(FIRST))
    if KERNELS in ASSIGNMENTS:
        submit(root, "unmasked", KERNELS, fab_kernel(KERNELS, 0, UNMASKED_KERNEL))
        submit(root, "torchcopy", KERNELS, fab_kernel(KERNELS, 1, TORCH_LAUNCHER))
    run_tool("grade.py", "--root", str(root), "--cell-timeout", str(CELL_TIMEOUT_S))
    first_csv = (root / "grades.csv").read_text()
    run_tool("feedback.py", "--root", str(root))
    return {"root": root, "rows": read_csv(root / "grades.csv"), "csv": first_csv}


def row(course, a, student):
    return course["rows"][(a, student)]


# ---------------------------------------------------------------------------------------------
# Release
# ---------------------------------------------------------------------------------------------


def test_every_existing_chapter_has_an_assignment():
    chapters = {p.stem for p in (REPO / "notebooks").glob("0[1-5]_*.ipynb")}
    assert chapters <= set(ASSIGNMENTS), f"chapters without an assignment: {chapters - set(ASSIGNMENTS)}"
    assert FIRST in ASSIGNMENTS


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_release_has_no_solution_and_no_hidden_test(course, a):
    src = "\n".join(c.source for c in source_nb(a).cells)
    secrets = (regions(src, "### BEGIN SOLUTION", "### END SOLUTION")
               + regions(src, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
    assert secrets
    files = [p for p in (course["root"] / "release" / a).rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path
        released = nbformat.read(str(path), as_version=4)
        body = "\n".join(c.source for c in released.cells)
        leaked = [s for s in secrets if s in body]
        assert not leaked, f"{path} leaks {leaked[:3]}"
        assert "raise NotImplementedError()" in body
        assert all(not c.get("outputs") for c in released.cells if c.cell_type == "code")


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_assignment_has_four_graded_parts_with_public_and_hidden_tests(a):
    nb = source_nb(a)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) >= 4
    for c in graded:
        public = c.source.split("### BEGIN HIDDEN TESTS")[0]
        assert "assert" in public, f"{gid(c)} has no public test"
        assert "### BEGIN HIDDEN TESTS" in c.source, f"{gid(c)} has no hidden test"
    assert len(impl_cells(nb)) >= 2 and answers_of(napkin_cell(nb))


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", GRADED)
def test_source_scores_full_marks(course, a):
    r = row(course, a, "ref")
    assert r["status"] == "ok" and float(r["score"]) == float(r["max_score"]) > 0, r["parts"]
    assert r["flags"] == ""


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_released_stub_scores_zero(course, a):
    r = row(course, a, "stub")
    assert r["status"] == "ok" and float(r["score"]) == 0, r["parts"]
    impl_parts = [p for c in impl_cells(source_nb(a)) for p in parts_after(source_nb(a), gid(c))]
    assert impl_parts and all(r["part_scores"][p] == 0 for p in impl_parts)


@pytest.mark.parametrize("a", GRADED)
def test_a_raising_part_scores_zero_and_the_rest_is_graded(course, a):
    r = row(course, a, "crash")
    lost = parts_after(source_nb(a), gid(impl_cells(source_nb(a))[0]))
    for part, score in r["part_scores"].items():
        assert score == (0 if part in lost else r["part_max"][part]), (part, r["parts"])


def test_wrong_answers_and_garbage_score_zero(course):
    r = row(course, FIRST, "wrong")
    assert r["status"] == "ok" and float(r["score"]) == 0, r["parts"]
    graded = course["root"] / "autograded" / "wrong" / FIRST / f"{FIRST}.ipynb"
    napkin = napkin_cell(nbformat.read(str(graded), as_version=4))
    printed = "".join(o.get("text", "") for o in napkin.outputs if o.output_type == "stream")
    assert printed.count("\n") <= 210, "LimitOutput should cap the garbage"


def test_a_hanging_part_is_cut_off_and_the_rest_is_graded(course):
    r = row(course, FIRST, "hang")
    lost = parts_after(source_nb(FIRST), gid(impl_cells(source_nb(FIRST))[1]))
    assert r["status"] == "ok"
    for part, score in r["part_scores"].items():
        assert score == (0 if part in lost else r["part_max"][part]), (part, r["parts"])
    graded = nbformat.read(str(course["root"] / "autograded" / "hang" / FIRST / f"{FIRST}.ipynb"), as_version=4)
    cut = [c for c in graded.cells if gid(c) in lost]
    assert "no answer within" in "".join(o.get("text", "") for o in cut[0].outputs)


def test_tampering_with_test_cells_gains_nothing(course):
    r = row(course, FIRST, "tamper")
    nb = source_nb(FIRST)
    impl_parts = [p for c in impl_cells(nb) for p in parts_after(nb, gid(c))]
    napkin_parts = parts_after(nb, "napkin")
    assert float(r["max_score"]) == sum(c.metadata["nbgrader"]["points"] for c in nb.cells
                                        if c.metadata.get("nbgrader", {}).get("grade"))
    assert set(r["part_scores"]) == set(impl_parts) | set(napkin_parts), "no bonus part"
    assert all(r["part_scores"][p] == 0 for p in impl_parts), r["parts"]
    assert all(r["part_scores"][p] == r["part_max"][p] for p in napkin_parts), r["parts"]
    assert float(r["score"]) == sum(r["part_max"][p] for p in napkin_parts)


def test_copied_answers_score_zero_on_napkin_parts(course):
    r = row(course, FIRST, "copycat")
    nb = source_nb(FIRST)
    for p in parts_after(nb, "napkin"):
        assert r["part_scores"][p] == 0, r["parts"]
    for c in impl_cells(nb):
        for p in parts_after(nb, gid(c)):
            assert r["part_scores"][p] == r["part_max"][p], r["parts"]


def test_claiming_another_id_scores_zero_and_is_flagged(course):
    r = row(course, FIRST, "spoofer")
    assert float(r["score"]) == 0, r["parts"]
    assert "env" in r["flags"].split(";")


def test_deleting_the_setup_cell_scores_zero(course):
    r = row(course, FIRST, "nosetup")
    assert float(r["score"]) == 0, r["parts"]
    assert "env" in r["flags"].split(";")


def test_patching_the_grader_gains_nothing_and_is_flagged(course):
    # The patch lives in the student's kernel; the clean grader never runs there.
    r = row(course, FIRST, "patcher")
    assert all(r["part_scores"][p] == 0 for p in parts_after(source_nb(FIRST), "napkin")), r["parts"]
    assert "grading-internals" in r["flags"].split(";")
    assert row(course, FIRST, "ref")["flags"] == ""


@pytest.mark.parametrize("a", GRADED)
def test_liar_floats_and_a_rebound_grading_score_zero_and_honest_parts_keep_points(course, a):
    r = row(course, a, "liar")
    nb = source_nb(a)
    for p in parts_after(nb, "napkin"):
        assert r["part_scores"][p] == 0, r["parts"]
    for c in impl_cells(nb):
        for p in parts_after(nb, gid(c)):
            assert r["part_scores"][p] == r["part_max"][p], r["parts"]


def test_a_dead_kernel_keeps_earlier_parts(course):
    r = row(course, FIRST, "killer")
    nb = source_nb(FIRST)
    for c in impl_cells(nb):
        for p in parts_after(nb, gid(c)):
            assert r["part_scores"][p] == r["part_max"][p], r["parts"]
    for p in parts_after(nb, "napkin"):
        assert r["part_scores"][p] == 0, r["parts"]


@pytest.mark.skipif(KERNELS not in ASSIGNMENTS or importlib.util.find_spec("triton") is None,
                    reason="no kernels assignment, or triton is not installed")
@pytest.mark.parametrize("student", ["unmasked", "torchcopy"])
def test_13_kernels_an_unmasked_or_unused_kernel_loses_only_part_1(course, student):
    # unmasked: stores past the end (into spare room the test provides: the kernel survives);
    # torchcopy: launches the kernel but returns a PyTorch result. Both lose Part 1 only.
    r = row(course, KERNELS, student)
    lost = parts_after(source_nb(KERNELS), gid(impl_cells(source_nb(KERNELS))[0]))
    assert r["status"] == "ok" and r["flags"] == "", r
    for part, score in r["part_scores"].items():
        assert score == (0 if part in lost else r["part_max"][part]), (part, r["parts"])


def test_every_submission_has_a_row(course):
    subs = {(p.parent.name, p.parent.parent.name) for p in (course["root"] / "submitted").glob("*/*/*.ipynb")}
    assert set(course["rows"]) == subs


def test_grading_twice_gives_the_same_csv(course):
    run_tool("grade.py", FIRST, "--root", str(course["root"]), "--cell-timeout", str(CELL_TIMEOUT_S))
    assert (course["root"] / "grades.csv").read_text() == course["csv"]


# ---------------------------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------------------------


def test_feedback_is_offline_and_shows_no_hidden_test(course):
    files = sorted((course["root"] / "feedback").glob("*/*/*.html"))
    graded = sorted((course["root"] / "autograded").glob("*/*/*.ipynb"))
    assert len(files) == len(graded) >= 4 * len(ASSIGNMENTS)
    hidden = {a: regions("\n".join(c.source for c in source_nb(a).cells),
                         "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS") for a in ASSIGNMENTS}
    for path in files:
        text = path.read_text()
        assert not REMOTE.search(text), f"{path} loads {REMOTE.search(text).group(0)}"
        plain = html.unescape(re.sub(r"<[^>]+>", "", text))
        assert "HIDDEN TESTS" not in plain
        leaked = [s for s in hidden[path.parent.name] if s in plain]
        assert not leaked, f"{path} shows hidden test lines {leaked[:3]}"
        assert "Score:" in plain


# ---------------------------------------------------------------------------------------------
# The book page
# ---------------------------------------------------------------------------------------------


def test_book_page_shows_public_parts_only(course):
    sys.path.insert(0, str(TOOLS))
    try:
        import book_pages
    finally:
        sys.path.remove(str(TOOLS))
    sections = []
    for a in ASSIGNMENTS:
        released = nbformat.read(str(course["root"] / "release" / a / f"{a}.ipynb"), as_version=4)
        section = book_pages.render(released)
        src = "\n".join(c.source for c in source_nb(a).cells)
        secrets = (regions(src, "### BEGIN SOLUTION", "### END SOLUTION")
                   + regions(src, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
        assert not [s for s in secrets if s in section]
        assert "HIDDEN TESTS" not in section and "BEGIN SOLUTION" not in section
        assert "## Assignment" in section and "Public tests" in section
        sections.append(section)
    page = REPO / "book" / "exercises.md"
    if page.is_file():  # generated by book_pages.py before the book build: must be current
        assert page.read_text() == book_pages.HEADER + "\n".join(sections), \
            "book/exercises.md is stale: run .venv/bin/python exercises/tools/book_pages.py"


# ---------------------------------------------------------------------------------------------
# The whole-notebook cap (a separate tiny course: it needs short timeouts)
# ---------------------------------------------------------------------------------------------


def test_a_loop_that_swallows_the_interrupt_is_capped(tmp_path):
    sys.path.insert(0, str(TOOLS))
    try:
        from build_sources import solution, tests
    finally:
        sys.path.remove(str(TOOLS))
    loop = ("import time\n### BEGIN SOLUTION\nwhile True:\n    try:\n        time.sleep(0.1)\n"
            "    except KeyboardInterrupt:\n        pass\n### END SOLUTION")
    # The parts after the loop grade an answer the kernel computes after it: the clean grader
    # gets answers only from the collector that runs at the end of the notebook, so a capped
    # notebook hands over none and those parts score 0 (the part before needs no answer).
    answer = "### BEGIN SOLUTION\nanswer_x = 1.0\n### END SOLUTION"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [tests("before", 1, "assert True"), solution("loop", loop), solution("napkin", answer)]
    nb.cells += [tests(f"after_{i}", 1, "assert answer_x == 1.0") for i in range(6)]
    a = "99_timeout"
    (tmp_path / "source" / a).mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "source" / a / f"{a}.ipynb"))
    run_tool("release.py", "--root", str(tmp_path))
    submit(tmp_path, "swallow", a, nb)
    run_tool("grade.py", "--root", str(tmp_path), "--cell-timeout", "2", "--notebook-timeout", "6",
             timeout=300)
    r = read_csv(tmp_path / "grades.csv")[(a, "swallow")]
    assert r["status"] == "ok" and r["part_scores"]["before"] == 1 and float(r["score"]) == 1, r["parts"]
    graded = nbformat.read(str(tmp_path / "autograded" / "swallow" / a / f"{a}.ipynb"), as_version=4)
    enames = {o.get("ename") for c in graded.cells for o in c.get("outputs", [])}
    assert {"CellTimeoutError", "NotebookTimeout"} <= enames


def test_the_leak_check_catches_markers_and_secret_lines():
    sys.path.insert(0, str(TOOLS))
    try:
        from _common import HIDDEN_MARKERS, leaks
    finally:
        sys.path.remove(str(TOOLS))
    secret = "assert abs(answer - 6 * N * D) < 1e-9"
    assert leaks("f.ipynb", "x = 1\nprint(x)", HIDDEN_MARKERS, {secret}) == []
    found = leaks("f.ipynb", f"{HIDDEN_MARKERS[0]}\n{secret}\n", HIDDEN_MARKERS, {secret}, "hidden line")
    assert found == [f"f.ipynb: contains {HIDDEN_MARKERS[0]!r}", f"f.ipynb: contains hidden line {secret!r}"]
