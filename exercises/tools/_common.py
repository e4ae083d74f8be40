"""Paths and the nbgrader runner shared by release.py, grade.py, feedback.py and book_pages.py."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
EXERCISES = TOOLS.parent
REPO = EXERCISES.parent
CONFIG = EXERCISES / "nbgrader_config.py"

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
ASSIGNMENT_RE = re.compile(r"^\d\d_[a-z0-9_]+$")


def assignments(root: Path) -> list[str]:
    """Assignments with a source notebook ``source/NN_topic/NN_topic.ipynb``, sorted."""
    src = root / "source"
    if not src.is_dir():
        return []
    return sorted(p.name for p in src.iterdir()
                  if ASSIGNMENT_RE.match(p.name) and (p / f"{p.name}.ipynb").is_file())


def submissions(root: Path, assignment: str) -> list[str]:
    """Student ids with a folder ``submitted/<student>/<assignment>/``, sorted."""
    sub = root / "submitted"
    if not sub.is_dir():
        return []
    return sorted(p.name for p in sub.iterdir() if (p / assignment).is_dir())


def load_config(root: Path, *, cell_timeout_s: float | None = None,
                notebook_timeout_s: float | None = None):
    """Our nbgrader_config.py as a traitlets Config, for the course folder ``root``."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(EXERCISES)).load_config()
    cfg.CourseDirectory.root = str(root)
    if cell_timeout_s is not None:
        cfg.Execute.timeout = int(cell_timeout_s)
    if notebook_timeout_s is not None:
        cfg.StudentExecute.notebook_timeout = float(notebook_timeout_s)
    return cfg


def nbgrader_api(root: Path, **timeouts: float | None):
    """An in-process ``nbgrader.apps.NbGraderAPI`` on course folder ``root`` with our config.

    One Python process runs every step (starting ``nbgrader`` costs seconds per command).
    nbgrader runs the ``alembic`` script of its own environment when it creates a gradebook, so
    this environment's bin/ goes first on PATH.
    """
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import warnings

    from sqlalchemy.exc import SAWarning

    # nbgrader's own ORM usage warns on every autograde; nothing for the instructor to act on.
    warnings.filterwarnings("ignore", category=SAWarning)
    try:  # a test cell nbgrader puts back (deleted by a student) has no cell id yet
        from nbformat.warnings import MissingIDFieldWarning

        warnings.filterwarnings("ignore", category=MissingIDFieldWarning)
    except ImportError:  # older nbformat
        pass
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = load_config(root, **timeouts)
    coursedir = CourseDirectory(config=cfg)
    return NbGraderAPI(coursedir=coursedir, config=cfg)


def report(step: str, result: dict, *, verbose: bool = False) -> bool:
    """Print an NbGraderAPI result's errors (and its log when ``verbose``); True on success."""
    ok = bool(result.get("success"))
    if verbose or not ok:
        log = result.get("log") or ""
        if log.strip():
            print(log.rstrip(), file=sys.stderr)
    if not ok:
        print(f"{step}: failed\n{result.get('error', '')}".rstrip(), file=sys.stderr)
    return ok


def root_arg(value: str | None) -> Path:
    """The course folder: ``--root`` or exercises/ of this repository."""
    return Path(value).resolve() if value else EXERCISES


def leaks(where: object, text: str, markers: tuple[str, ...], secrets: set[str],
          what: str = "source line") -> list[str]:
    """Problems if ``text`` (a released file or a feedback page) shows an nbgrader marker or
    any of the ``secrets`` (solution or hidden-test lines); ``where`` names the file."""
    problems = [f"{where}: contains {m!r}" for m in markers if m in text]
    return problems + [f"{where}: contains {what} {s!r}" for s in sorted(secrets) if s in text]

