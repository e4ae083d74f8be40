"""Timelines of measured compute and communication events, one row per rank.

The events come from :class:`labutils.parallel.harness.EventLog` (``time.perf_counter`` seconds, a
clock every process on one Linux machine shares). :func:`overlap_summary` measures how much
communication ran while compute ran; :func:`plot_timeline` draws the spans.
"""

from __future__ import annotations

from collections.abc import Sequence

from labutils.parallel.harness import Event

COLORS = {"compute": "tab:blue", "comm": "tab:orange", "wait": "tab:gray"}


def flatten(events: Sequence[Event] | Sequence[Sequence[Event]]) -> list[Event]:
    """Accept a flat list of events or launch()'s list of per-rank lists."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, Event):
            out.append(e)
        else:
            out.extend(flatten(e))
    for e in out:
        if e.end_s < e.start_s:
            raise ValueError(f"event {e.name!r} on rank {e.rank} ends before it starts")
    return out


def _union(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _length(spans: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in spans)


def _intersection(x: list[tuple[float, float]], y: list[tuple[float, float]]) -> float:
    total = 0.0
    for a, b in x:
        for c, d in y:
            total += max(0.0, min(b, d) - max(a, c))
    return total


def overlap_summary(events: Sequence[Event] | Sequence[Sequence[Event]]) -> dict[int, dict[str, float]]:
    """Per rank: ``compute_s``, ``comm_s`` (union of spans), ``overlap_s`` (communication time
    during which compute also ran), ``span_s`` (first start to last end), all in seconds."""
    by_rank: dict[int, list[Event]] = {}
    for e in flatten(events):
        by_rank.setdefault(e.rank, []).append(e)
    out = {}
    for rank, evs in sorted(by_rank.items()):
        comp = _union([(e.start_s, e.end_s) for e in evs if e.kind == "compute"])
        comm = _union([(e.start_s, e.end_s) for e in evs if e.kind == "comm"])
        out[rank] = dict(compute_s=_length(comp), comm_s=_length(comm),
                         overlap_s=_intersection(comp, comm),
                         span_s=max(e.end_s for e in evs) - min(e.start_s for e in evs))
    return out


def plot_timeline(events: Sequence[Event] | Sequence[Sequence[Event]], ax=None, title: str = ""):
    """Draw each rank's spans (compute blue, all-reduce orange, waiting grey) in milliseconds
    from the earliest event; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    evs = flatten(events)
    if not evs:
        raise ValueError("events is empty: record them with EventLog(enabled=True)")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.5))
    t0 = min(e.start_s for e in evs)
    ranks = sorted({e.rank for e in evs})
    for e in evs:
        row = ranks.index(e.rank)
        # comm spans sit in the lower half of the row so they stay visible over compute
        y, h = (row - 0.4, 0.4) if e.kind == "comm" else (row, 0.4)
        ax.broken_barh([((e.start_s - t0) * 1e3, max(e.duration_s * 1e3, 1e-3))], (y, h),
                       facecolors=COLORS.get(e.kind, "tab:green"), edgecolor="black",
                       linewidth=0.3)
    ax.set_yticks(range(len(ranks)), [f"rank {r}" for r in ranks])
    ax.set_xlabel("time (ms)")
    ax.set_title(title)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLORS.items()], loc="upper left",
              fontsize=8, ncol=3)
    ax.set_ylim(-0.6, len(ranks) - 0.2 + 0.4)
    return ax
