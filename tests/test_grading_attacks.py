"""The clean grader under attack, on every assignment (exercises/tools/clean_check.py).

Each hostile submission is built from the instructor's source notebook: the solution, with
code appended to one implementation cell that attacks the grader. The checker runs in its own
``python -I`` process, exactly as ``grade.py`` runs it. Every attacked part must score zero
and every honest part (the napkin answers, here the key's own values) keeps its points.

* ``liar``: Part 1's functions return a float subclass whose ``==``, ``<=``, ``-`` and ``abs``
  always succeed; the cell rebinds ``grading`` to an object of no-op functions, patches
  ``labutils.grading.check_answer`` and prints a megabyte. Part 2 wraps the correct functions
  in a module-level helper that calls labutils through a default argument (and swallows the
  error): a reference call, caught when it happens.
* ``hang_kill``: Part 1 loops forever, Part 2 ends its process with ``os._exit``.

The full pipeline (nbgrader, the kernel's collector, the CSV) is exercised in
tests/test_exercises.py.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labutils import grading

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "exercises" / "tools"
sys.path.insert(0, str(TOOLS))
import answer_key  # noqa: E402
from clean_check import defined_functions  # noqa: E402

ASSIGNMENTS = sorted(p.name for p in (REPO / "exercises" / "source").iterdir()
                     if (p / f"{p.name}.ipynb").is_file())
NEEDS = {"13_kernels": "triton"}
CASES = [pytest.param(a, marks=pytest.mark.skipif(
             a in NEEDS and importlib.util.find_spec(NEEDS[a]) is None, reason="needs triton"))
         for a in ASSIGNMENTS]
STUDENT = "mallory"
CALL_TIMEOUT_S = 5

LIAR = '''
class _Liar(float):
    def __eq__(self, other):
        return True
    __le__ = __ge__ = __lt__ = __gt__ = __eq__
    def __ne__(self, other):
        return False
    def __sub__(self, other):
        return _Liar(0.0)
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__
    def __abs__(self):
        return _Liar(0.0)
    def __bool__(self):
        return True
def _lie(f):
    return lambda *a, **k: _Liar(1.0)
for _n in {names}:
    globals()[_n] = _lie(globals()[_n])
grading = type("_Anything", (), {{"__getattr__": lambda s, n: (lambda *a, **k: [])}})()
import labutils.grading as _lg
_lg.check_answer = lambda *a, **k: None
print("flood " * 200_000)
'''
HELPER_REF = '''
import labutils.grading as _lg
def _helper(_ref=_lg.student_seed):
    try:
        _ref("x", "01_flops")
    except Exception:
        pass
def _with_helper(f):
    def g(*a, **k):
        _helper()
        return f(*a, **k)
    return g
for _n in {names}:
    globals()[_n] = _with_helper(globals()[_n])
'''
HANG = '''
def _hang(f):
    def g(*a, **k):
        while True:
            pass
    return g
for _n in {names}:
    globals()[_n] = _hang(globals()[_n])
'''
KILL = '''
import os as _os
for _n in {names}:
    globals()[_n] = lambda *a, **k: _os._exit(1)
'''


def _source(a: str) -> dict:
    return json.loads((REPO / "exercises" / "source" / a / f"{a}.ipynb").read_text())


def _cells(a: str):
    for c in _source(a)["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        yield meta.get("grade_id"), meta, "".join(c["source"])


def _impl(a: str) -> dict[str, str]:
    return {g: src for g, m, src in _cells(a) if g and m.get("solution") and g.endswith("_impl")}


def _honest_answers(a: str) -> dict:
    """The key's values under the notebook's variable names (ints where a count is asked)."""
    expected = answer_key.expected_answers(a, grading.student_params(STUDENT, a))
    out = {}
    for _, _, src in _cells(a):
        for name, var in re.findall(r'check_answer\(ASSIGNMENT, "(\w+)", (answer_\w+)', src):
            v = expected[name]
            out[var] = int(v) if float(v).is_integer() and abs(v) < 2**53 else v
    return out


def _parts_after(a: str) -> dict[str, list[str]]:
    """solution grade_id -> the graded cells that follow it."""
    out, current = {}, None
    for g, m, _ in _cells(a):
        if g and m.get("solution"):
            current = g
            out[current] = []
        elif g and m.get("grade") and current:
            out[current].append(g)
    return out


def _run(a: str, impl: dict[str, str], tmp_path: Path, answers: dict | None = None) -> dict:
    job = {"assignment": a, "student": STUDENT, "source_nb": str(REPO / "exercises" / "source" / a / f"{a}.ipynb"),
           "impl_sources": impl, "answers": _honest_answers(a) if answers is None else answers,
           "rejected": {}, "call_timeout_s": CALL_TIMEOUT_S}
    (tmp_path / "job.json").write_text(json.dumps(job))
    subprocess.run([sys.executable, "-I", str(TOOLS / "clean_check.py"), str(tmp_path / "job.json"),
                    str(tmp_path / "out.json")], check=True, timeout=600, cwd=tmp_path)
    return json.loads((tmp_path / "out.json").read_text())


def _attacked(a: str, first: str, second: str) -> dict[str, str]:
    impl = _impl(a)
    ids = list(impl)
    for gid, attack in zip(ids[:2], (first, second)):
        impl[gid] += "\n" + attack.format(names=defined_functions(impl[gid]))
    return impl


def _check(a: str, results: dict, attacked: int = 2) -> None:
    after = _parts_after(a)
    lost = [p for gid in list(_impl(a))[:attacked] for p in after[gid]]
    kept = after["napkin"]
    assert lost and kept
    assert all(not results[p]["passed"] for p in lost), {p: results[p] for p in lost}
    assert all(results[p]["passed"] for p in kept), {p: results[p] for p in kept}


@pytest.mark.parametrize("a", CASES)
def test_liars_rebinding_patching_and_hidden_reference_calls_score_zero(a, tmp_path):
    results = _run(a, _attacked(a, LIAR, HELPER_REF), tmp_path)
    _check(a, results)
    second = _parts_after(a)[list(_impl(a))[1]]
    if a not in NEEDS:  # a wrapped Triton kernel fails earlier: it can no longer be launched
        assert any("labutils reference" in results[p]["message"] for p in second), results


@pytest.mark.parametrize("a", CASES)
def test_hangs_and_killed_processes_score_zero_and_grading_goes_on(a, tmp_path):
    _check(a, _run(a, _attacked(a, HANG, KILL), tmp_path))


def test_the_honest_submission_scores_everything_and_twice_the_same(tmp_path):
    a = "01_flops"
    first = _run(a, _impl(a), tmp_path)
    assert all(r["passed"] for r in first.values()), first
    assert _run(a, _impl(a), tmp_path) == first


def test_answers_of_another_student_or_a_wrong_type_score_zero(tmp_path):
    a = "01_flops"
    answers = _honest_answers(a)
    victim = answer_key.expected_answers(a, grading.student_params("alice", a))
    copied = {**answers, "answer_train_flops": victim["train_flops"], "answer_attention_share": True}
    results = _run(a, _impl(a), tmp_path, copied)
    assert not results["napkin_train_flops"]["passed"] and not results["napkin_attention_share"]["passed"]
    assert results["napkin_n_params"]["passed"] and results["count_params_tests"]["passed"]
