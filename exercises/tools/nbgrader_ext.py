"""nbgrader preprocessors of this course (loaded by exercises/nbgrader_config.py).

* :class:`StudentExecute` replaces nbgrader's ``Execute`` in ``autograde``. Its run only
  *collects* what the clean grader (``clean_check.py``) scores: the test cells run their public
  tests only (hidden regions are removed before the kernel starts), and a last cell added by the
  grader prints the ``answer_*`` values as JSON (:data:`COLLECTOR`). Also:
  - it starts each submission's kernel with ``LABUTILS_STUDENT_ID=<student>``, the name of the
    submission folder (``submitted/<student>/<assignment>/``), which ``labutils.grading`` reads
    once at import to draw that student's numbers. The notebook's ``MY_ID`` is ignored then.
  - after the run it checks that the locked setup cell (grade_id ``setup``) printed exactly
    ``student id: <student>``; if the notebook ran under any other id (say a cell placed
    before the setup cell changed the environment, or the setup cell was deleted), every graded
    cell gets an error: score 0.
  - if the kernel dies (``os._exit``, a segfault, out of memory), the cells already run keep
    their results and the rest get an error output, so earlier parts are still graded.
  - besides nbgrader's per-cell timeout (``Execute.timeout``), it caps the whole notebook at
    ``notebook_timeout`` seconds: once over, the remaining cells are not run and get an error
    output, so they score zero (a submission whose loop swallows the interrupt cannot stall
    grading for cells × timeout).
* :class:`OverwriteCellsStrict` replaces ``OverwriteCells`` when autograde sanitizes a
  submission: cells that claim nbgrader metadata the source does not have are demoted to plain
  cells (nbgrader would otherwise reject the whole notebook).
* :class:`HideHiddenTests` (feedback only): removes ``### BEGIN/END HIDDEN TESTS`` regions from
  the source of every cell, and replaces the outputs of cells that had such a region with the
  exception name and nbgrader's score, so no hidden test line leaks through a traceback.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from traitlets import Float, Unicode

from nbgrader.api import MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells

ENV_STUDENT_ID = "LABUTILS_STUDENT_ID"  # must match labutils.grading.ENV_STUDENT_ID
COLLECT_MARKER = "@@collected-answers@@ "  # the line grade.py reads back (see COLLECTOR)
# Run after the student's last cell: prints the ``answer_*`` values as JSON. Only exact ints and
# finite floats are collected (NumPy scalars are converted); anything else is listed as rejected.
# The clean grader (clean_check.py) checks them again: JSON can carry plain numbers only.
COLLECTOR = f"""# Added by the grader: the answers it takes out of this notebook.
def _lab_collect(ns):
    import json, math
    answers, rejected = {{}}, {{}}
    for k, v in sorted(ns.items()):
        if not k.startswith("answer_"):
            continue
        t = type(v)
        if t.__module__ == "numpy" and t.__name__ in ("float64", "float32", "int64", "int32"):
            v = v.item()
            t = type(v)
        if t is int or (t is float and math.isfinite(v)):
            answers[k] = v
        else:
            rejected[k] = f"got {{t.__module__}}.{{t.__qualname__}}" + ("" if t is not float else f" {{v}}")
    print({COLLECT_MARKER!r} + json.dumps({{"answers": answers, "rejected": rejected}}))
_lab_collect(globals())
"""
SETUP_ID = "setup"  # grade_id of the locked cell that prints "student id: <id>"
ID_LINE = re.compile(r"^student id: (.*)$", re.MULTILINE)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


def strip_hidden(source: str) -> str:
    """``source`` without its ``### BEGIN/END HIDDEN TESTS`` regions."""
    kept, inside = [], False
    for line in source.split("\n"):
        if line.strip() == "### BEGIN HIDDEN TESTS":
            inside = True
        elif line.strip() == "### END HIDDEN TESTS":
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept).rstrip() + ("\n# (hidden tests: run by the clean grader)" if source != "\n".join(kept) else "")


def check_identity(nb: NotebookNode, student: str, *, required: bool = True) -> bool:
    """True when the setup cell printed exactly one id line, naming ``student``.

    A notebook without the setup cell passes only when ``required`` is False (its source has
    none); a deleted setup cell is not put back by nbgrader (it is locked, not graded).
    """
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == SETUP_ID:
            text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                           if o.get("output_type") == "stream")
            return ID_LINE.findall(text) == [student]
    return not required


def source_has_setup(resources: Any) -> bool:
    """Whether the source notebook being graded has a setup cell (asked of the gradebook)."""
    from nbgrader.api import Gradebook

    info = resources.get("nbgrader", {})
    with Gradebook(info["db_url"]) as gb:
        try:
            gb.find_source_cell(SETUP_ID, info["notebook"], info["assignment"])
        except MissingEntry:
            return False
    return True


class StudentExecute(Execute):
    """nbgrader's Execute, with the student id in the kernel's environment and a notebook cap."""

    notebook_timeout = Float(
        600.0, help="Seconds for the whole notebook; later cells are skipped (score 0)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):  # type: ignore[override]
        student = (resources or {}).get("nbgrader", {}).get("student")
        if not student:
            raise RuntimeError("StudentExecute needs resources['nbgrader']['student'] (autograde)")
        old = os.environ.get(ENV_STUDENT_ID)
        os.environ[ENV_STUDENT_ID] = str(student)  # the kernel inherits it when it starts
        self._deadline = None  # starts with the first code cell (kernel start-up not counted)
        self._dead = False
        for cell in nb.cells:  # hidden tests run in the clean grader, never in this kernel
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                cell.source = strip_hidden(cell.source)
        nb.cells.append(nbformat.v4.new_code_cell(COLLECTOR))
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        finally:
            if old is None:
                os.environ.pop(ENV_STUDENT_ID, None)
            else:
                os.environ[ENV_STUDENT_ID] = old
        if not check_identity(nb, str(student), required=source_has_setup(resources)):
            self.log.warning("%s: the setup cell did not run as student %r; all parts get 0",
                             resources["nbgrader"].get("notebook"), student)
            for cell in nb.cells:
                if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                    cell.setdefault("outputs", []).append(_error(
                        "StudentIdMismatch", f"this notebook did not run as student {student!r}"))
        return nb, resources

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        if cell.cell_type != "code":
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if getattr(self, "_dead", False):
            cell.outputs = [_error("DeadKernelError", "not run: the kernel died in an earlier cell")]
            return cell
        if getattr(self, "_deadline", None) is None:
            self._deadline = time.monotonic() + self.notebook_timeout
        elif time.monotonic() > self._deadline:
            cell.outputs = [_error("NotebookTimeout",
                                   f"not run: the notebook exceeded {self.notebook_timeout:.0f} s")]
            return cell
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            self._dead = True
            cell.outputs = list(cell.get("outputs", [])) + [_error("DeadKernelError", "the kernel died")]
            return cell
        except CellTimeoutError as err:
            # The kernel ignored the interrupt and stays busy (no IOPub idle): record the timeout,
            # go on; the following cells time out in turn until the notebook cap skips the rest.
            cell.outputs = list(cell.get("outputs", [])) + [_error("CellTimeoutError", str(err).split("\n")[0])]
            return cell

    # nbclient binds the sync wrapper to its own coroutine at class creation: rebind to ours.
    execute_cell = run_sync(async_execute_cell)


class OverwriteCellsStrict(OverwriteCells):
    """nbgrader's OverwriteCells, but a cell whose nbgrader metadata names no cell of the source
    (a "graded" cell a student added, or one without a grade_id) becomes a plain cell instead of
    failing the whole notebook's validation. Known cells are restored as usual."""

    def preprocess_cell(self, cell: NotebookNode, resources: Any, cell_index: int):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is not None:
            grade_id = meta.get("grade_id")
            known = grade_id is not None
            if known:
                try:
                    self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
                except MissingEntry:
                    known = False
            if not known:
                self.log.warning("Cell %r is not in the source notebook: graded as a plain cell",
                                 grade_id)
                del cell.metadata["nbgrader"]
                return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden-test regions and their tracebacks from feedback notebooks."""

    begin = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if self.begin not in cell.source:
            return cell, resources
        kept, inside = [], False
        for line in cell.source.split("\n"):
            if self.begin in line:
                inside = True
            elif self.end in line:
                inside = False
            elif not inside:
                kept.append(line)
        cell.source = "\n".join(kept).rstrip() + "\n# (hidden tests were run here)"
        if cell.cell_type == "code":
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                lines = [f"{o.get('ename', 'Error')}: {str(o.get('evalue', ''))[:300]}" for o in errors]
                summary = "tests failed:\n" + "\n".join(lines)
            else:
                summary = "all tests passed"
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=summary + "\n")]
        return cell, resources
