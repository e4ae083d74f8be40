"""Pipeline schedules as data, and a discrete-event simulator that runs them.

Chapter 7 (pipeline parallelism; lecture 001_1699c98f94d8aa9d.txt, "Pipeline Parallelism - 3D").
The model's layers are cut into ``p`` consecutive **stages**, one per rank; the batch is cut into
``m`` **micro-batches**. A *schedule* says, for every stage, in which order it runs the forward
(``F``) and backward (``B``) pass of each micro-batch:

* ``naive``: one batch, no micro-batching (``m = 1``): one stage busy at a time;
* ``afab``: all forward, all backward (GPipe, Huang et al. 2019);
* ``1f1b``: one forward, one backward (PipeDream-Flush, Narayanan et al. 2019 and 2021): a warm-up
  of ``p - s - 1`` forwards on stage ``s``, then alternate, then drain the backwards;
* ``interleaved``: 1F1B where each rank holds ``v`` non-consecutive **chunks** of layers
  (Narayanan et al. 2021, Sec. 2.2.2, Megatron-LM's ``forward_backward_pipelining_with_interleaving``).

:func:`simulate` runs a schedule with per-op times and returns :class:`Event` spans, the makespan,
the bubble, and the peak number of micro-batches whose activations each stage holds; the closed
forms it is checked against are :mod:`labutils.parallel.pipeline.cost`.

Two definitions of "bubble" are in use, and :func:`labutils.parallel.pipeline.cost.bubble_fraction` gives both:

* :func:`bubble_fraction` with ``definition="ratio"`` (Narayanan et al. 2021, Sec. 2.2.1): bubble
  time over ideal compute time, t_pb / t_id = (p - 1)/m, and (p - 1)/(v·m) interleaved;
* ``definition="idle"`` (the share of the step a rank sits idle; GPipe's (K - 1)/(M + K - 1)):
  bubble / (bubble + compute) = (p - 1)/(m + p - 1), and (p - 1)/(v·m + p - 1) interleaved.
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.parallel.harness import Event
from labutils.validate import non_negative, positive, positive_int

SCHEDULES = ("naive", "afab", "1f1b", "interleaved")
KIND = {"F": "forward", "B": "backward"}
COLORS = {"forward": "tab:blue", "backward": "tab:green", "wait": "lightgray"}


@dataclass(frozen=True)
class Op:
    """One pass of one micro-batch through one chunk of a stage: ``kind`` is "F" or "B"."""

    kind: str
    microbatch: int
    chunk: int = 0

    def __str__(self) -> str:
        return f"{self.kind}{self.microbatch}" + (f".{self.chunk}" if self.chunk else "")


@dataclass(frozen=True)
class Schedule:
    """``ops[s]`` is the ordered list of ops stage (rank) ``s`` runs in one training step."""

    name: str
    p: int  # pipeline stages (ranks)
    m: int  # micro-batches per step
    v: int  # model chunks per rank (1 unless interleaved)
    ops: tuple[tuple[Op, ...], ...]


# ----------------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------------


def _check_schedule_name(name: object) -> str:
    if name not in SCHEDULES:
        raise ValueError(f"name (the schedule) must be one of {SCHEDULES}, got {name!r}")
    return name  # type: ignore[return-value]


def afab_ops(p: int, m: int, stage: int) -> list[Op]:
    """GPipe: all m forwards, then all m backwards (in micro-batch order, as in Megatron Fig. 3)."""
    return [Op("F", k) for k in range(m)] + [Op("B", k) for k in range(m)]


def one_f_one_b_ops(p: int, m: int, stage: int) -> list[Op]:
    """PipeDream-Flush: ``min(p - stage - 1, m)`` warm-up forwards, then F/B pairs, then drain."""
    warmup = min(p - stage - 1, m)
    ops = [Op("F", k) for k in range(warmup)]
    for i in range(m - warmup):  # steady state: one forward, one backward
        ops += [Op("F", warmup + i), Op("B", i)]
    ops += [Op("B", k) for k in range(m - warmup, m)]  # cool-down
    return ops


def interleaved_ops(p: int, m: int, v: int, stage: int) -> list[Op]:
    """Megatron-LM's interleaved 1F1B for one rank holding chunks 0..v-1 (virtual stages
    ``chunk·p + stage``). Micro-batches go through in groups of p, so m must be a multiple of p."""
    total = m * v

    def op(kind: str, k: int) -> Op:
        chunk = (k % (p * v)) // p
        if kind == "B":
            chunk = v - 1 - chunk
        return Op(kind, (k // (p * v)) * p + k % p, chunk)

    warmup = min((p - stage - 1) * 2 + (v - 1) * p, total)
    ops = [op("F", k) for k in range(warmup)]
    for i in range(total - warmup):
        ops += [op("F", warmup + i), op("B", i)]
    ops += [op("B", k) for k in range(total - warmup, total)]
    return ops


def make_schedule(name: str, p: int, m: int = 1, v: int = 1) -> Schedule:
    """The schedule ``name`` (one of ``SCHEDULES``) for p stages, m micro-batches, v chunks.

    ``naive`` needs m = 1 (one batch: the whole batch is one micro-batch), ``interleaved`` needs
    v >= 2 and m a multiple of p (Megatron's requirement); the others need v = 1.
    """
    name = _check_schedule_name(name)
    p, m, v = positive_int("p", p), positive_int("m", m), positive_int("v", v)
    if name == "naive" and m != 1:
        raise ValueError(f"m must be 1 for the naive schedule (one batch), got m={m}")
    if name != "interleaved" and v != 1:
        raise ValueError(f"v must be 1 for schedule {name!r} (only 'interleaved' has chunks), got {v}")
    if name == "interleaved":
        if v < 2:
            raise ValueError(f"v must be >= 2 for the interleaved schedule, got {v}")
        if m % p:
            raise ValueError(f"m must be a multiple of p for the interleaved schedule, got m={m}, p={p}")
        ops = [interleaved_ops(p, m, v, s) for s in range(p)]
    elif name == "1f1b":
        ops = [one_f_one_b_ops(p, m, s) for s in range(p)]
    else:
        ops = [afab_ops(p, m, s) for s in range(p)]
    return Schedule(name, p, m, v, tuple(tuple(o) for o in ops))


# ----------------------------------------------------------------------------------------------
# Dependencies, validity, memory
# ----------------------------------------------------------------------------------------------


def dependency(op: Op, stage: int, p: int, v: int) -> tuple[int, Op] | None:
    """The (stage, op) that must finish before ``op`` on ``stage`` may start, or None.

    Virtual stage g = chunk·p + stage. F needs F of the same micro-batch on g - 1; B needs B on
    g + 1, and the last virtual stage's B needs its own F (the loss).
    """
    g, last = op.chunk * p + stage, p * v - 1
    if op.kind == "F":
        return None if g == 0 else ((g - 1) % p, Op("F", op.microbatch, (g - 1) // p))
    if g == last:
        return (stage, Op("F", op.microbatch, op.chunk))
    return ((g + 1) % p, Op("B", op.microbatch, (g + 1) // p))


def check_valid(sched: Schedule) -> None:
    """Raise ValueError unless every stage runs each (F|B, micro-batch, chunk) exactly once, every
    F before its B on that stage, and every dependency can be met (no deadlock)."""
    want = sorted((k, mb, c) for k in "FB" for mb in range(sched.m) for c in range(sched.v))
    for s, ops in enumerate(sched.ops):
        if sorted((o.kind, o.microbatch, o.chunk) for o in ops) != want:
            raise ValueError(f"stage {s} does not run every op exactly once")
        seen = set()
        for o in ops:
            if o.kind == "B" and ("F", o.microbatch, o.chunk) not in seen:
                raise ValueError(f"stage {s} runs {o} before its forward")
            seen.add((o.kind, o.microbatch, o.chunk))
    simulate(sched, 1.0, 1.0)  # raises on a deadlock


def in_flight(ops: tuple[Op, ...] | list[Op]) -> list[int]:
    """After each op, how many (micro-batch, chunk) activation sets the stage holds: +1 at a
    forward, -1 when its backward has run."""
    held, out = 0, []
    for o in ops:
        held += 1 if o.kind == "F" else -1
        out.append(held)
    return out


def peak_in_flight(sched: Schedule) -> list[int]:
    """Per stage, the most (micro-batch, chunk) activation sets held at once (chunk units: each
    is 1/v of the stage's layers). AFAB: m; 1F1B: min(p - s, m); interleaved (first stage):
    2(p - 1) + (v - 1)·p + 1 chunks = p + (p - 1)/v stage-sized micro-batches."""
    return [max(in_flight(ops)) for ops in sched.ops]


# ----------------------------------------------------------------------------------------------
# Discrete-event simulation
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimResult:
    """A simulated step. Times in the units of t_f (seconds if you passed seconds)."""

    schedule: Schedule
    events: tuple[Event, ...]  # kind "forward"/"backward", name like "F3" or "F3.1"; rank = stage
    makespan: float  # first start to last end
    compute_per_stage: float  # m·(t_f + t_b): busy time of every stage
    peak_in_flight: tuple[int, ...]  # per stage, (micro-batch, chunk) activation sets
    p2p_messages: int  # activations and gradients sent between different ranks

    @property
    def idle_fraction(self) -> float:
        """Share of p·makespan during which ranks sit idle (GPipe's (p-1)/(m+p-1))."""
        return 1.0 - self.compute_per_stage / self.makespan

    @property
    def bubble_ratio(self) -> float:
        """Bubble time over ideal compute time (Narayanan et al. 2021's (p-1)/m)."""
        return (self.makespan - self.compute_per_stage) / self.compute_per_stage


def simulate(sched: Schedule, t_f: float, t_b: float, t_p2p: float = 0.0) -> SimResult:
    """Run ``sched``: each stage runs its ops in order, each op as soon as the stage is free and
    its dependency has finished (plus ``t_p2p`` when that dependency ran on another rank).

    ``t_f``, ``t_b``: forward and backward time of one micro-batch through a whole stage; a chunk
    op takes 1/v of it. Sends are asynchronous (they do not occupy the sender). Raises
    ValueError if the schedule deadlocks.
    """
    if not isinstance(sched, Schedule):
        raise TypeError(f"sched must be a Schedule (see make_schedule), got {sched!r}")
    t_f, t_b = positive("t_f", t_f), positive("t_b", t_b)
    t_p2p = non_negative("t_p2p", t_p2p)
    p, v = sched.p, sched.v
    dur = {"F": t_f / v, "B": t_b / v}
    end: dict[tuple[int, Op], float] = {}
    nxt, free = [0] * p, [0.0] * p
    events: list[Event] = []
    messages = 0
    remaining = sum(len(o) for o in sched.ops)
    while remaining:
        progressed = False
        for s in range(p):
            while nxt[s] < len(sched.ops[s]):
                op = sched.ops[s][nxt[s]]
                dep = dependency(op, s, p, v)
                ready = 0.0
                if dep is not None:
                    if dep not in end:
                        break
                    remote = dep[0] != s
                    ready = end[dep] + (t_p2p if remote else 0.0)
                    messages += remote
                start = max(free[s], ready)
                free[s] = end[(s, op)] = start + dur[op.kind]
                events.append(Event(s, KIND[op.kind], str(op), start, free[s]))
                nxt[s] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            stuck = {s: str(sched.ops[s][nxt[s]]) for s in range(p) if nxt[s] < len(sched.ops[s])}
            raise ValueError(f"schedule {sched.name!r} deadlocks: stages wait at {stuck}")
    makespan = max(e.end_s for e in events) - min(e.start_s for e in events)
    return SimResult(sched, tuple(events), makespan, sched.m * (t_f + t_b),
                     tuple(peak_in_flight(sched)), messages)


# ----------------------------------------------------------------------------------------------
# Plot
# ----------------------------------------------------------------------------------------------


def plot_schedule(events, ax=None, title: str = "", time_unit: str = "t_f", scale: float = 1.0,
                  labels: bool = True):
    """Draw forward (blue) and backward (green) spans per stage, stage 0 on top, with the
    micro-batch number in each box. ``events`` is a list of :class:`Event` (or per-rank lists,
    as :func:`launch` returns); times are multiplied by ``scale`` and labelled ``time_unit``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from labutils.parallel.timeline import flatten

    evs = flatten(events)
    if not evs:
        raise ValueError("events is empty")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.2))
    t0 = min(e.start_s for e in evs)
    ranks = sorted({e.rank for e in evs})
    for e in evs:
        y = len(ranks) - 1 - ranks.index(e.rank)
        x, w = (e.start_s - t0) * scale, e.duration_s * scale
        ax.broken_barh([(x, w)], (y - 0.4, 0.8), facecolors=COLORS.get(e.kind, "tab:orange"),
                       edgecolor="black", linewidth=0.4)
        if labels and e.kind in ("forward", "backward"):
            ax.text(x + w / 2, y, e.name[1:], ha="center", va="center", fontsize=7,
                    color="white" if e.kind == "forward" else "black", clip_on=True)
    ax.set_yticks(range(len(ranks)), [f"stage {r}" for r in reversed(ranks)])
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLORS.items()
                       if any(e.kind == k for e in evs)],
              loc="upper right", fontsize=7, ncol=3)
    ax.set_ylim(-0.6, len(ranks) - 0.4 + 0.5)
    return ax
