"""The clean grader: scores one submission in a process that runs no student code.

    python -I exercises/tools/clean_check.py JOB.json RESULT.json

``grade.py`` writes JOB.json after nbgrader has run the student's notebook: the assignment, the
student id (the submission folder's name), the instructor's source notebook, the source of each
implementation cell of the submission, and the ``answer_*`` values collected from the kernel
(plain JSON numbers). For every graded cell of the **instructor's** source (public and hidden
tests; what the submission's test cells say is ignored), this process

* builds a fresh namespace from the instructor's setup cell, run here for the folder's id;
* binds each function the assignment asks for (the top-level ``def``s of the source's
  implementation cells) to a :class:`Remote` that calls the student's function in a separate
  sandbox process (``sandbox.py``) and rebuilds its result from plain data (``wire.py``);
* binds the collected answers, and ``grading`` to :class:`KeyGrading`, whose ``check_answer``
  compares with the instructor's key (``answer_key.py``) for the folder's id;
* runs the cell's source; the part passes when it raises nothing and the student's code called
  no labutils function (the sandbox poisons them).

The student's kernel, and the sandbox, can only ever hand over plain data: a rigged ``__eq__``,
a rebound ``grading``, a patched checker or an edited test cell never reach this process.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import wire  # noqa: E402

ENV_STUDENT_ID = "LABUTILS_STUDENT_ID"
ENV_EXECUTION = "NBGRADER_EXECUTION"
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


class StudentError(AssertionError):
    """The student's code raised, hung, died, or returned something the grader refuses."""


class Sandbox:
    """One sandbox process running the submission's implementation cells (restarted after a
    hang or a crash, so a later part still gets a live one)."""

    def __init__(self, preamble: str, cells: list[tuple[str, str]], env: dict, call_timeout_s: float):
        self.preamble, self.cells, self.env = preamble, cells, env
        self.call_timeout_s = call_timeout_s
        self.proc: subprocess.Popen | None = None
        self.refs: list[str] = []
        self.load_errors: dict[str, str] = {}
        self.tmp = tempfile.TemporaryDirectory(prefix="sandbox-")

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(TOOLS / "sandbox.py"), str(req_r), str(resp_w)],
            pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=self.tmp.name, env=self.env, start_new_session=True)
        os.close(req_r)
        os.close(resp_w)
        self.req_w, self.resp_r = req_w, resp_r
        wire.send(self.req_w, pickle.dumps({"preamble": self.preamble, "cells": self.cells}))
        hello = self._recv(max(self.call_timeout_s, 60.0))
        self.load_errors = hello.get("errors", {}) if type(hello.get("errors")) is dict else {}
        self._note_refs(hello)

    def _note_refs(self, resp: dict) -> None:
        refs = resp.get("refs")
        if type(refs) is list:
            self.refs = [str(r) for r in refs]

    def _recv(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        buf = b""
        need = 8
        while len(buf) < need:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.resp_r], [], [], max(left, 0))
            if not ready:
                self.kill()
                raise StudentError(f"TimeoutError: no answer within {timeout_s:.0f} s (a hang?)")
            chunk = os.read(self.resp_r, 1 << 20)
            if not chunk:
                self.kill()
                raise StudentError("DeadProcess: the student's code ended the process")
            buf += chunk
            if need == 8 and len(buf) >= 8:
                need = 8 + int.from_bytes(buf[:8], "big")
                if need - 8 > wire.MAX_MESSAGE_BYTES:
                    self.kill()
                    raise StudentError("the student's code sent a result over the size limit")
        resp = wire.loads(buf[8:need])
        if type(resp) is not dict:
            raise StudentError("malformed answer from the student's process")
        return resp

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for fd in (self.req_w, self.resp_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.proc = None

    def request(self, **req) -> object:
        if self.proc is None:
            self._start()
        try:
            wire.send(self.req_w, pickle.dumps(req))
        except (BrokenPipeError, OSError):
            self.kill()
            raise StudentError("DeadProcess: the student's code ended the process") from None
        resp = self._recv(self.call_timeout_s)
        self._note_refs(resp)
        if resp.get("ok") is not True:
            raise StudentError(str(resp.get("error", "error"))[:400])
        for i, node in (resp.get("args") or {}).items():
            _copy_back(req["args"][int(i)], wire.decode(node))
        return wire.decode(resp.get("value"))


def _copy_back(original: object, new: object) -> None:
    """Write what the student's function did to an argument back into the grader's object."""
    kind = type(original).__name__
    if kind == "Tensor" and type(new).__name__ == "Tensor" and new.shape == original.shape:
        original.copy_(new)
    elif kind == "ndarray" and type(new).__name__ == "ndarray" and new.shape == original.shape:
        original[...] = new
    elif type(original) is list and type(new) is list:
        original[:] = new


class Remote:
    """Stands in, in the checker, for one function of the student's (called in the sandbox)."""

    def __init__(self, sandbox: Sandbox, name: str):
        self._sandbox, self._name = sandbox, name

    def __call__(self, *args, **kwargs):
        return self._sandbox.request(op="call", name=self._name, args=args, kwargs=kwargs)

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            return self._sandbox.request(op="launch", name=self._name, grid=grid, args=args, kwargs=kwargs)
        return launch

    def __repr__(self) -> str:
        return f"<student function {self._name}>"


class StudentProcess:
    """Lets a test run instructor code inside the student's namespace (e.g. swap in a spy)."""

    def __init__(self, sandbox: Sandbox):
        self._sandbox = sandbox

    def exec(self, src: str) -> None:
        self._sandbox.request(op="exec", src=src)

    def eval(self, expr: str) -> object:
        return self._sandbox.request(op="eval", src=expr)


class KeyGrading:
    """``grading`` inside a test cell: the instructor's key for the folder's id."""

    def __init__(self, assignment: str, student: str):
        import answer_key

        self._key, self._assignment, self._student = answer_key, assignment, student

    def check_answer(self, assignment: str, name: str, value: object, *, student: object = None) -> None:
        if assignment != self._assignment:
            raise AssertionError(f"check_answer for {assignment!r} in {self._assignment!r}")
        self._key.check_answer(self._assignment, name, value, student=self._student)


def defined_functions(source_cell: str) -> list[str]:
    """Top-level function names an implementation cell of the source defines (what the
    assignment asks for; only these are looked up in the student's process)."""
    return [n.name for n in ast.parse(source_cell).body if isinstance(n, ast.FunctionDef)]


def _cells(nb: dict) -> list[tuple[str | None, dict, str]]:
    out = []
    for c in nb["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        out.append((meta.get("grade_id"), meta, src))
    return out


def grade(job: dict) -> dict[str, dict]:
    """``{grade_id: {"passed": bool, "message": str}}`` for every graded cell of the source."""
    assignment, student = job["assignment"], job["student"]
    os.environ[ENV_STUDENT_ID] = student  # read by labutils.grading on import (setup cell)
    os.environ[ENV_EXECUTION] = "autograde"
    nb = json.loads(Path(job["source_nb"]).read_text())
    cells = _cells(nb)
    setup = next((src for gid, _, src in cells if gid == "setup"), "")
    impl_ids = [gid for gid, meta, _ in cells if gid and meta.get("solution") and gid.endswith("_impl")]
    wanted = [name for gid, meta, src in cells if gid in impl_ids for name in defined_functions(src)]
    student_cells = [(gid, job["impl_sources"].get(gid, "")) for gid in impl_ids]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    sandbox = Sandbox(setup, student_cells, env, float(job.get("call_timeout_s", 20)))
    base: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup, "<setup>", "exec"), base)
    base["grading"] = KeyGrading(assignment, student)
    base["student_process"] = StudentProcess(sandbox)
    base.update({name: Remote(sandbox, name) for name in wanted})
    answers, rejected = _answers(job)
    base.update(answers)
    results = {}
    try:
        for gid, meta, src in cells:
            if gid and meta.get("grade"):
                results[gid] = _run_part(src, dict(base), sandbox, rejected)
    finally:
        sandbox.kill()
    return results


def _answers(job: dict) -> tuple[dict, dict]:
    import answer_key

    answers, rejected = {}, dict(job.get("rejected") or {})
    for name, value in (job.get("answers") or {}).items():
        try:
            answers[name] = answer_key.plain_number(name, value)
            if type(value) is int:
                answers[name] = value  # an exact count stays an int
        except AssertionError as err:
            rejected[name] = str(err)
    return answers, rejected


def _run_part(src: str, ns: dict, sandbox: Sandbox, rejected: dict) -> dict:
    used = [n for n in rejected if n in src]
    if used:
        return {"passed": False, "message": f"{used[0]} was rejected: {rejected[used[0]]}"[:300]}
    refs_before = len(sandbox.refs)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(src, "<tests>", "exec"), ns)
    except BaseException as err:  # noqa: BLE001 - any failure of a test means no points
        if isinstance(err, KeyboardInterrupt):
            raise
        return {"passed": False, "message": _message(err, sandbox, refs_before)}
    new_refs = sandbox.refs[refs_before:]
    if new_refs:
        return {"passed": False, "message": f"your code called the labutils reference {new_refs[0]}"}
    return {"passed": True, "message": "all tests passed"}


def _message(err: BaseException, sandbox: Sandbox, refs_before: int) -> str:
    if sandbox.refs[refs_before:]:
        return f"your code called the labutils reference {sandbox.refs[refs_before]}"
    if isinstance(err, NameError) and sandbox.load_errors:
        gid, msg = next(iter(sandbox.load_errors.items()))
        return f"your cell {gid} failed: {msg}"[:300]
    return f"{type(err).__name__}: {str(err)[:300]}"


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    results = grade(job)
    Path(argv[1]).write_text(json.dumps(results, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
