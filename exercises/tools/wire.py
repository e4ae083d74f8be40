"""How values cross from the student's process to the grader's: JSON of plain data, nothing else.

The sandbox (``sandbox.py``, which runs student code) encodes what a student's function returns
with :func:`encode`; the clean checker (``clean_check.py``) rebuilds it with :func:`decode`. The
checker never unpickles anything the sandbox sends, so no student object (a float subclass whose
``==`` always holds, a tensor subclass with ``__torch_function__``...) can reach the code that
compares. Only exact types are encoded: ``type(v) is float``, not ``isinstance``. Anything else
becomes ``{"t": "unsupported"}`` and :func:`decode` raises, so the part fails with a clear message.

Framing on a pipe: an 8-byte big-endian length, then the payload (see :func:`send`, :func:`recv`).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

MAX_MESSAGE_BYTES = 64 * 2**20  # a response larger than this is refused (a flood, not a result)
_HEADER = struct.Struct(">Q")


class WireError(TypeError):
    """A value the grader does not accept (wrong type, malformed message)."""


def encode(value: object, _depth: int = 0) -> dict:
    """A JSON-ready tree for ``value``: None, bool, int, float, str, list, tuple, dict, NumPy
    arrays and scalars, torch tensors, each of its exact type (subclasses are not encoded)."""
    if _depth > 20:
        return {"t": "unsupported", "type": "nesting deeper than 20"}
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return {"t": t.__name__ if value is not None else "none", "v": value}
    if t in (list, tuple):
        return {"t": t.__name__, "v": [encode(x, _depth + 1) for x in value]}
    if t is dict:
        return {"t": "dict", "v": [[encode(k, _depth + 1), encode(x, _depth + 1)] for k, x in value.items()]}
    mod = getattr(t, "__module__", "")
    if mod == "numpy" and t.__name__ == "ndarray":
        return {"t": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape), "v": value.ravel().tolist()}
    if mod == "numpy" and hasattr(value, "dtype") and value.shape == ():
        return {"t": "npscalar", "dtype": str(value.dtype), "v": value.item()}
    if mod == "torch" and t.__name__ == "Tensor":
        flat = value.detach().to("cpu").reshape(-1).tolist()
        return {"t": "tensor", "dtype": str(value.dtype).removeprefix("torch."),
                "shape": list(value.shape), "device": str(value.device), "v": flat}
    return {"t": "unsupported", "type": f"{mod}.{t.__qualname__}"}


def _exact(node: dict, key: str, *types: type) -> Any:
    v = node.get(key)
    if type(v) not in types:
        raise WireError(f"malformed value: {key!r} is a {type(v).__name__}")
    return v


def _numbers(v: list) -> list:
    if type(v) is not list or any(type(x) not in (int, float, bool) for x in v):
        raise WireError("malformed array data")
    return v


def decode(node: object) -> Any:
    """Rebuild a value from :func:`encode`'s tree, with types of the grader's own making."""
    if type(node) is not dict:
        raise WireError(f"malformed value: {type(node).__name__}")
    t = node.get("t")
    if t == "none":
        return None
    if t in ("bool", "int", "float", "str"):
        want = {"bool": bool, "int": int, "float": float, "str": str}[t]
        return _exact(node, "v", want)
    if t in ("list", "tuple"):
        items = [decode(x) for x in _exact(node, "v", list)]
        return items if t == "list" else tuple(items)
    if t == "dict":
        pairs = _exact(node, "v", list)
        if any(type(p) is not list or len(p) != 2 for p in pairs):
            raise WireError("malformed dict")
        return {decode(k): decode(v) for k, v in pairs}
    if t == "ndarray":
        import numpy as np

        shape = tuple(_exact(node, "shape", list))
        return np.asarray(_numbers(node["v"]), dtype=np.dtype(_exact(node, "dtype", str))).reshape(shape)
    if t == "npscalar":
        import numpy as np

        v = _exact(node, "v", int, float, bool)
        return np.dtype(_exact(node, "dtype", str)).type(v)
    if t == "tensor":
        import torch

        dtype = getattr(torch, _exact(node, "dtype", str), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError(f"unknown tensor dtype {node['dtype']!r}")
        shape = tuple(_exact(node, "shape", list))
        data = torch.tensor(_numbers(node["v"]), dtype=dtype, device=_exact(node, "device", str))
        return data.reshape(shape)
    if t == "unsupported":
        raise WireError(f"returned a {node.get('type')!s:.80}: return plain Python numbers, "
                        "lists, tuples, dicts, NumPy arrays or torch tensors (not subclasses)")
    raise WireError(f"malformed value of kind {t!r:.40}")


def send(fd: int, payload: bytes) -> None:
    """Write one framed message to file descriptor ``fd``."""
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """Read one framed message from ``fd`` (blocking); refuses one over ``max_bytes``."""
    (n,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    if n > max_bytes:
        raise WireError(f"message of {n} bytes is over the limit of {max_bytes}")
    return _read_exact(fd, n)


def dumps(obj: object) -> bytes:
    return json.dumps(obj).encode()


def loads(data: bytes) -> Any:
    return json.loads(data.decode())
