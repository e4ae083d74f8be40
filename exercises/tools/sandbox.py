"""The student side of clean grading: runs a submission's implementation cells, answers calls.

Started by ``clean_check.py`` as ``python -I sandbox.py REQ_FD RESP_FD`` with stdin, stdout and
stderr on /dev/null (whatever a student prints goes nowhere) in a scratch folder. Protocol
(framed messages, see ``wire.py``): requests are pickles written by the checker (trusted);
responses are JSON of plain data (:func:`wire.encode`), the only thing the checker reads back.

1. The first request holds the instructor's setup cell (run first, as in the notebook) and the
   source of each implementation cell of the submission. Before any student line runs, every
   function and method of ``labutils`` is replaced by a *poison* that records the call and
   raises :class:`ReferenceCallError`: implementation parts must not call the reference, and the
   poison catches it however the call is made (a default argument, a helper, an alias).
2. Then each request calls one of the student's functions (``call``), launches a Triton kernel
   (``launch``: ``name[grid](*args)``), or runs instructor code in the student's namespace
   (``exec``/``eval``, for tests such as swapping a kernel for a spy). Arrays, tensors and lists
   passed in are sent back after the call, so the checker sees in-place writes.
"""

from __future__ import annotations

import linecache
import pickle
import sys
import traceback
import types
from pathlib import Path

_TOOLS = str(Path(__file__).resolve().parent)
sys.path.insert(0, _TOOLS)
import wire  # noqa: E402

sys.path.remove(_TOOLS)  # student code must not import the instructor's tools (answer_key, variants)

REFS: list[str] = []  # labutils functions the student's code called (in order)


class ReferenceCallError(RuntimeError):
    """Raised by a poisoned labutils function."""


def _poison(qualname: str):
    def poisoned(*args, **kwargs):
        REFS.append(qualname)
        raise ReferenceCallError(f"{qualname} is the reference: implementation parts must not call labutils")

    poisoned.__name__ = qualname.rsplit(".", 1)[-1]
    return poisoned


def _from_labutils(obj: object) -> bool:
    mod = getattr(obj, "__module__", None)
    return isinstance(mod, str) and (mod == "labutils" or mod.startswith("labutils."))


def poison_labutils(namespace: dict) -> int:
    """Replace every labutils function (module level, in ``namespace``, and methods of labutils
    classes) by a poison; returns how many were replaced."""
    count = 0
    classes = []
    for name, module in list(sys.modules.items()):
        if not (name == "labutils" or name.startswith("labutils.")) or module is None:
            continue
        for attr, obj in list(vars(module).items()):
            if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)) and _from_labutils(obj):
                setattr(module, attr, _poison(f"{name}.{attr}"))
                count += 1
            elif isinstance(obj, type) and _from_labutils(obj):
                classes.append(obj)
    for cls in set(classes):
        for attr, obj in list(vars(cls).items()):
            if attr.startswith("__"):
                continue
            if isinstance(obj, (types.FunctionType, staticmethod, classmethod, property)):
                setattr(cls, attr, _poison(f"{cls.__module__}.{cls.__qualname__}.{attr}"))
                count += 1
    for key, obj in list(namespace.items()):
        if isinstance(obj, types.FunctionType) and _from_labutils(obj):
            namespace[key] = _poison(f"{obj.__module__}.{obj.__qualname__}")
            count += 1
    return count


def _run(src: str, filename: str, ns: dict, mode: str = "exec") -> object:
    """exec/eval ``src`` with its lines registered in linecache (``@triton.jit`` and
    ``inspect.getsource`` read a function's source from there, as in a notebook)."""
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    code = compile(src, filename, mode)
    return eval(code, ns) if mode == "eval" else exec(code, ns)


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (line {last[0].lineno} of {last[0].filename})" if last else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def _mutable_args(args: tuple) -> dict:
    out = {}
    for i, a in enumerate(args):
        if type(a) is list or type(a).__name__ in ("ndarray", "Tensor"):
            out[str(i)] = wire.encode(a)
    return out


def handle(ns: dict, req: dict) -> dict:
    op = req["op"]
    if op == "exec":
        _run(req["src"], f"<grader-{len(linecache.cache)}>", ns)
        return {"value": wire.encode(None)}
    if op == "eval":
        return {"value": wire.encode(_run(req["src"], "<grader-eval>", ns, "eval"))}
    fn = ns.get(req["name"])
    if fn is None:
        raise NameError(f"name {req['name']!r} is not defined by your implementation cell")
    args, kwargs = req["args"], req["kwargs"]
    if op == "launch":
        value = fn[req["grid"]](*args, **kwargs)
        return {"value": wire.encode(None), "args": _mutable_args(args)}
    value = fn(*args, **kwargs)
    return {"value": wire.encode(value), "args": _mutable_args(args)}


def main(req_fd: int, resp_fd: int) -> None:
    setup = pickle.loads(wire.recv(req_fd))
    ns: dict = {"__name__": "__main__"}
    _run(setup["preamble"], "<setup>", ns)
    poison_labutils(ns)
    before = {k: id(v) for k, v in ns.items()}
    errors = {}
    for grade_id, src in setup["cells"]:
        try:
            _run(src, f"<{grade_id}>", ns)
        except BaseException as exc:  # noqa: BLE001 - a broken cell must not sink the others
            errors[grade_id] = _error(exc)
    names = sorted(k for k, v in ns.items() if callable(v) and before.get(k) != id(v)
                   and not k.startswith("__"))
    wire.send(resp_fd, wire.dumps({"names": names, "errors": errors, "refs": REFS}))
    while True:
        try:
            req = pickle.loads(wire.recv(req_fd))
        except EOFError:
            return
        try:
            resp = {"ok": True, **handle(ns, req)}
        except BaseException as exc:  # noqa: BLE001 - reported to the checker as the part's error
            resp = {"ok": False, "error": _error(exc)}
        resp["refs"] = REFS
        try:
            payload = wire.dumps(resp)
        except (TypeError, ValueError) as exc:
            payload = wire.dumps({"ok": False, "error": f"unencodable result: {exc}", "refs": REFS})
        wire.send(resp_fd, payload)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
