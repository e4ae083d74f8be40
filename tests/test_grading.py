"""labutils.grading: per-student parameters and the id the grader uses (the answer key is
instructor-only: tests/test_grading_key.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labutils import grading



def test_seed_is_stable_and_depends_on_both_inputs():
    # Pinned: changing the derivation would silently change every student's numbers mid-course.
    assert grading.student_seed("alice", "01_flops") == 0x1F9E8C66B7B7C88B
    s = grading.student_seed("alice", "01_flops")
    assert s == grading.student_seed("alice", "01_flops")
    assert s != grading.student_seed("bob", "01_flops")
    assert s != grading.student_seed("alice", "02_scaling_laws")
    assert 0 <= s < 2**64


@pytest.mark.parametrize("assignment", grading.ASSIGNMENTS)
def test_params_are_deterministic_and_vary_between_students(assignment):
    a = grading.student_params("alice", assignment)
    assert a == grading.student_params("alice", assignment)
    others = [grading.student_params(f"s{i:03d}", assignment) for i in range(20)]
    assert sum(o != a for o in others) >= 18, "parameters barely depend on the student id"


@pytest.mark.parametrize("bad, exc", [("", ValueError), ("a b", ValueError), ("../x", ValueError),
                                      ("x" * 65, ValueError), (3, TypeError), (None, TypeError)])
def test_bad_student_ids_raise(bad, exc):
    with pytest.raises(exc):
        grading.student_seed(bad, "01_flops")


def test_bad_assignment_raises():
    with pytest.raises(ValueError, match="assignment must be one of"):
        grading.student_params("alice", "99_nope")


def test_student_id_outside_autograding_uses_the_fallback(monkeypatch):
    if grading.is_autograding():
        pytest.skip("running under nbgrader autograde")
    assert grading.student_id("alice") == "alice"
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    with pytest.raises(ValueError, match="MY_ID"):
        grading.student_id(None)
    with pytest.raises(ValueError, match="MY_ID"):
        grading.student_id(grading.PLACEHOLDER_ID)  # the released notebook's MY_ID, unchanged
    monkeypatch.setenv("JUPYTERHUB_USER", "hubuser")
    assert grading.student_id(None) == "hubuser"


def _autograde_kernel(code: str, student: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (grading.ENV_STUDENT_ID, grading.ENV_EXECUTION)}
    env[grading.ENV_EXECUTION] = "autograde"
    if student is not None:
        env[grading.ENV_STUDENT_ID] = student
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_autograding_uses_the_grader_id_read_at_import():
    # The id a student writes (MY_ID) is ignored, and changing the environment after the setup
    # cell imported labutils.grading changes nothing.
    code = ("import os; from labutils import grading\n"
            "os.environ['LABUTILS_STUDENT_ID'] = 'alice'\n"
            "print(grading.student_id('alice'))")
    out = _autograde_kernel(code, "bob")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bob"


def test_autograding_without_grader_id_fails_loudly():
    out = _autograde_kernel("from labutils import grading; grading.student_id('alice')", None)
    assert out.returncode != 0 and "LABUTILS_STUDENT_ID" in out.stderr
