"""Notebook hygiene and the notebook/package contract.

* Notebooks are committed without outputs or execution counts (the book build and nbmake run them).
* Every chapter follows the anatomy: a title, a seeded setup that says what device it runs on.
* Every ``labutils`` name a notebook uses exists (d2l's readers kept hitting missing helpers).
* Every notebook is in the course map and in the book's table of contents.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labutils.course import CHAPTERS

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def _code(path: Path) -> str:
    """All code cells, with IPython magics and shell lines dropped so that ast can parse them."""
    lines = []
    for src in _cells(path, "code"):
        lines += [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def _toc_files() -> set[str]:
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    files = set()
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.add(ch["file"])
    return files


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds the chapters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; strip them"
    assert "widgets" not in nb["metadata"], f"{path.name}: committed widget state; strip it"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_anatomy(path: Path) -> None:
    first = _cells(path, "markdown")[0]
    assert first.startswith("# "), f"{path.name}: the first cell is the chapter title"
    code = _code(path)
    assert "seed_everything(" in code, f"{path.name}: seed at the top (labutils.seed_everything)"
    assert "describe()" in code, f"{path.name}: the setup cell prints labutils.device.describe()"


def _labutils_references(tree: ast.AST) -> set[tuple[str, str | None]]:
    """(module, attribute) pairs for `from labutils.x import y` and `import labutils.x`."""
    refs: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labutils"):
            refs |= {(node.module, alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            refs |= {(a.name, None) for a in node.names if a.name.startswith("labutils")}
    return refs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_labutils_name_used_exists(path: Path) -> None:
    tree = ast.parse(_code(path))
    for module, attr in sorted(_labutils_references(tree), key=str):
        mod = importlib.import_module(module)
        if attr is not None and attr != "*":
            assert hasattr(mod, attr) or importlib.util.find_spec(f"{module}.{attr}"), (
                f"{path.name} imports {attr} from {module}, which has no such name")


def test_notebooks_are_in_the_course_map_and_the_toc() -> None:
    mapped = {ch.notebook for ch in CHAPTERS}
    toc = _toc_files()
    for path in NOTEBOOKS:
        assert path.stem in mapped, f"{path.name} is missing from labutils.course.CHAPTERS"
        assert f"notebooks/{path.stem}" in toc, f"{path.name} is missing from book/_toc.yml"
    for entry in toc:
        if entry.startswith("notebooks/"):
            assert (REPO / f"{entry}.ipynb").exists(), f"book/_toc.yml lists missing {entry}"


# A code cell in the book's column holds about 92 characters at its font (measured in Chromium:
# 780 px of <pre> at 8.4 px per character), so the formatter's line length is 88.
CODE_LINE_LENGTH = 88


def test_code_cells_are_formatted_to_the_column() -> None:
    """`ruff format` at the column's width leaves every notebook unchanged (run it to fix)."""
    cmd = [sys.executable, "-m", "ruff", "format", "--isolated", f"--line-length={CODE_LINE_LENGTH}",
           "--check", str(REPO / "notebooks")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        f"code cells need formatting; run `.venv/bin/ruff format --isolated "
        f"--line-length={CODE_LINE_LENGTH} notebooks/`:\n{done.stdout}{done.stderr}")


def test_code_lines_fit_the_column() -> None:
    """No code line is longer than the column: `ruff format` does not split long strings
    and comments, so ruff's E501 check catches what it leaves (split the string into
    implicitly concatenated pieces, name an intermediate value, or move the comment)."""
    cmd = [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E501",
           f"--line-length={CODE_LINE_LENGTH}", "--output-format", "concise",
           str(REPO / "notebooks")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (
        f"code lines longer than {CODE_LINE_LENGTH} characters (the book's column):\n"
        f"{done.stdout}{done.stderr}")
