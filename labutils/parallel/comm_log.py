"""One communication log for every strategy: what this rank sent, received and called.

Inside ``with recording() as log:`` every message and collective of the course's own code is
appended to ``log.records``:

* point-to-point messages (``"send"`` / ``"recv"``): the ring collectives of Chapter 5, the
  pipeline of Chapter 7, the K/V ring of Chapter 8. ``elements`` is the message size.
* collectives (``"all_reduce"``, ``"reduce_scatter"``, ``"all_gather"``): the tensor-parallel
  operators of Chapter 6 record themselves (with ``direction`` "forward"/"backward"), and with
  ``wrap_torch=True`` every call of ``torch.distributed``'s own collectives is recorded too,
  ours and FSDP2's (Chapter 5's ZeRO). ``elements`` is the full (unsharded) buffer.

From the records the log answers each chapter's question: bytes and messages a rank sent
(:meth:`CommLog.sent_bytes`, the ring's 2(p−1)/p·n), collectives called per direction
(:meth:`CommLog.count`), and the ZeRO paper's communication volume (:meth:`CommLog.volume_elements`;
Rajbhandari et al. 2020, Sec. 7.1: an all-reduce of n elements moves 2n, a reduce-scatter or
all-gather n). Timed spans (when something ran) are the timeline's job:
:class:`labutils.parallel.harness.EventLog`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch.distributed as dist

P2P = ("send", "recv")
COLLECTIVES = ("all_reduce", "reduce_scatter", "all_gather")


@dataclass(frozen=True)
class CommRecord:
    """One message or collective call, as this rank saw it."""

    op: str  # one of P2P + COLLECTIVES
    elements: int  # p2p: the message; collective: the full (unsharded) buffer
    element_bytes: int  # bytes per element
    group_size: int  # ranks taking part (2 for a message)
    direction: str = ""  # "forward" / "backward" where the caller says

    @property
    def volume_elements(self) -> int:
        """ZeRO Sec. 7.1 convention: all-reduce of n moves 2n; the others n."""
        return 2 * self.elements if self.op == "all_reduce" else self.elements

    @property
    def ring_bytes_sent(self) -> float:
        """Bytes this rank puts on the wire: a message's bytes (0 for a receive); for a
        collective run as a ring, (p − 1)/p · volume · bytes per element."""
        if self.op in P2P:
            return float(self.elements * self.element_bytes) if self.op == "send" else 0.0
        p = self.group_size
        return self.volume_elements * self.element_bytes * (p - 1) / p


@dataclass(eq=False)  # compared by identity: two logs with equal records are still two logs
class CommLog:
    """The records of one :func:`recording` block (or of a rank's results, passed back)."""

    records: list[CommRecord] = field(default_factory=list)

    def _select(self, op: str | None = None, direction: str | None = None) -> list[CommRecord]:
        return [r for r in self.records
                if (op is None or r.op == op) and (direction is None or r.direction == direction)]

    # -- point-to-point ------------------------------------------------------------------------
    def sent_bytes(self, direction: str | None = None) -> int:
        """Bytes of the messages this rank sent."""
        return sum(r.elements * r.element_bytes for r in self._select("send", direction))

    def received_bytes(self, direction: str | None = None) -> int:
        """Bytes of the messages this rank received."""
        return sum(r.elements * r.element_bytes for r in self._select("recv", direction))

    def messages_sent(self, direction: str | None = None) -> int:
        return len(self._select("send", direction))

    # -- collectives ---------------------------------------------------------------------------
    @property
    def calls(self) -> list[tuple[str, str, int]]:
        """Collective calls as ``(op, direction, elements)``, in order."""
        return [(r.op, r.direction, r.elements) for r in self.records if r.op in COLLECTIVES]

    def count(self, op: str, direction: str | None = None) -> int:
        """How many ``op`` calls (in ``direction``)."""
        return len(self._select(op, direction))

    def elements(self, op: str | None = None, direction: str | None = None) -> int:
        """Elements of the collectives selected (full buffers)."""
        return sum(r.elements for r in self._select(op, direction) if r.op in COLLECTIVES)

    def volume_elements(self) -> int:
        """Communication volume of the collectives, in elements (ZeRO's convention)."""
        return sum(r.volume_elements for r in self.records if r.op in COLLECTIVES)

    def volume_bytes(self) -> int:
        """Communication volume of the collectives, in bytes (ZeRO's convention)."""
        return sum(r.volume_elements * r.element_bytes for r in self.records
                   if r.op in COLLECTIVES)

    def ring_bytes_sent(self) -> float:
        """Bytes this rank sends if every collective runs as a ring."""
        return sum(r.ring_bytes_sent for r in self.records if r.op in COLLECTIVES)

    def by_op(self) -> dict[str, int]:
        """Volume in elements per kind of collective."""
        out: dict[str, int] = {}
        for r in self.records:
            if r.op in COLLECTIVES:
                out[r.op] = out.get(r.op, 0) + r.volume_elements
        return out

    def by_group(self) -> dict[str, int]:
        """Volume in elements per ``"<collective> over <group size>"``."""
        out: dict[str, int] = {}
        for r in self.records:
            if r.op in COLLECTIVES:
                key = f"{r.op} over {r.group_size}"
                out[key] = out.get(key, 0) + r.volume_elements
        return out


_ACTIVE: list[CommLog] = []


def record(op: str, elements: int, element_bytes: int, group_size: int,
           direction: str = "") -> None:
    """Append one record to every open :func:`recording` block (nothing if none is open)."""
    if op not in P2P + COLLECTIVES:
        raise ValueError(f"op must be one of {P2P + COLLECTIVES}, got {op!r}")
    for log in _ACTIVE:
        log.records.append(CommRecord(op, int(elements), int(element_bytes), int(group_size),
                                      direction))


# torch.distributed name -> (our op, position and keyword of the full buffer)
_TORCH_COLLECTIVES = {
    "all_reduce": ("all_reduce", 0, "tensor"),
    "reduce_scatter_single": ("reduce_scatter", 1, "input"),  # (output shard, input full)
    "reduce_scatter_tensor": ("reduce_scatter", 1, "input"),
    "all_gather_single": ("all_gather", 0, "output_tensor"),  # (output full, input shard)
    "all_gather_into_tensor": ("all_gather", 0, "output_tensor"),
}
_REFUSED = ("all_gather", "reduce_scatter", "broadcast", "reduce")  # list-based: not counted


def _counting(name: str, op: str, full_arg: int, full_kw: str) -> Callable:
    original = getattr(dist, name)

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003
        full = args[full_arg] if len(args) > full_arg else kwargs[full_kw]
        record(op, full.numel(), full.element_size(), dist.get_world_size(kwargs.get("group")))
        return original(*args, **kwargs)

    wrapper._comm_log = True
    return wrapper


def _refusing(name: str) -> Callable:
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError(f"the comm log does not count dist.{name}; add it to "
                           "_TORCH_COLLECTIVES")

    return wrapper


@contextmanager
def recording(wrap_torch: bool = False) -> Iterator[CommLog]:
    """Record this rank's communication while the block is open.

    With ``wrap_torch``, ``torch.distributed``'s collectives (``all_reduce``,
    ``reduce_scatter_single``/``_tensor``, ``all_gather_single``/``_into_tensor``) are
    replaced on the module for the duration, so that calls made by any code that looks them up
    there (ours, and FSDP2's) are recorded and then forwarded unchanged; the list-based ones
    raise, so that nothing goes uncounted. The originals are restored on exit.
    """
    log = CommLog()
    saved: dict[str, Callable] = {}
    # An enclosing block that already wraps them records into every open log, this one too.
    if wrap_torch and not getattr(dist.all_reduce, "_comm_log", False):
        for name, (op, arg, kw) in _TORCH_COLLECTIVES.items():
            saved[name] = getattr(dist, name)
            setattr(dist, name, _counting(name, op, arg, kw))
        for name in _REFUSED:
            saved[name] = getattr(dist, name)
            setattr(dist, name, _refusing(name))
    _ACTIVE.append(log)
    try:
        yield log
    finally:
        _ACTIVE.remove(log)
        for name, fn in saved.items():
            setattr(dist, name, fn)
