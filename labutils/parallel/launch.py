"""Run a worker function on several torch.distributed ranks, on one machine, without hanging.

``launch(worker, world_size, *args)`` is how every chapter runs its parallel code on a laptop:
it starts ``world_size`` processes, joins them into one gloo process group on 127.0.0.1, calls
``worker(*args)`` on each, and returns the results ordered by rank. Inside the worker,
``torch.distributed.get_rank()`` and ``get_world_size()`` work as they do under ``torchrun``, so
the same worker also runs on GPUs through :mod:`labutils.parallel.run`.

Guarantees (each has a test):
* a rank that raises stops every rank, and the error names that rank and carries its traceback;
* a rank that hangs is stopped after ``timeout_s``, and no child process is left behind.
"""

from __future__ import annotations

import datetime
import math
import multiprocessing as mp
import os
import pickle
import queue
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

HOST = "127.0.0.1"


class RankError(RuntimeError):
    """A rank raised an exception; ``rank`` says which, the message carries its traceback."""

    def __init__(self, rank: int, tb: str) -> None:
        super().__init__(f"rank {rank} failed:\n{tb}")
        self.rank = rank


class LaunchTimeout(TimeoutError):
    """Not every rank finished within ``timeout_s`` seconds."""


def _rank_main(
    rank: int,
    world_size: int,
    port: int,
    timeout_s: float,
    threads: int,
    results: Any,
    worker: Callable[..., Any],
    args: tuple,
) -> None:
    """Body of one child process: join the group, run the worker, report back."""
    try:
        torch.set_num_threads(threads)
        store = dist.TCPStore(HOST, port, world_size + 1, is_master=False,
                              timeout=datetime.timedelta(seconds=timeout_s))
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
        out = worker(*args)
        # Plain pickle (not torch's shared-memory queue reduction), so that the child may exit
        # as soon as the bytes are sent.
        results.put((rank, "ok", pickle.dumps(out), time.time()))
    except BaseException:  # noqa: BLE001 - every failure must reach the parent
        # Report before tearing down the group: the failing rank's report is then the earliest,
        # ahead of the "connection closed" errors it causes on its peers.
        results.put((rank, "error", traceback.format_exc(), time.time()))
    finally:
        # No barrier here: a rank that finished must not wait for one that failed.
        if dist.is_initialized():
            dist.destroy_process_group()


def _stop(procs: list[mp.process.BaseProcess]) -> None:
    """Terminate, then kill, every child that is still alive, and reap them all."""
    procs = [p for p in procs if p.pid is not None]  # skip any that never started
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 3.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _check_progress(procs: list, outputs: dict, dead_since: dict[int, float], deadline: float,
                    timeout_s: float) -> None:
    """Raise if the run is over time, or if a rank died without reporting (e.g. a segfault)."""
    if time.monotonic() > deadline:
        missing = sorted(set(range(len(procs))) - set(outputs))
        raise LaunchTimeout(
            f"ranks {missing} did not finish within timeout_s={timeout_s} s; all ranks were stopped"
        )
    for rank, p in enumerate(procs):
        # A rank that raised reports before it exits, so the report is read first; a rank that
        # exits non-zero and has not reported within a grace period crashed or was killed.
        if rank not in outputs and p.exitcode not in (None, 0):
            dead_since.setdefault(rank, time.monotonic())
            if time.monotonic() - dead_since[rank] > 1.0:
                raise RankError(rank, f"process exited with code {p.exitcode} without reporting "
                                      "(killed or crashed)")


def _first_error(results: Any, first: tuple) -> RankError:
    """The error of the rank that failed first: one failure makes its peers fail too."""
    reports = [first]
    grace = time.monotonic() + 0.5
    while time.monotonic() < grace:
        try:
            reports.append(results.get(timeout=0.05))
        except queue.Empty:
            pass
    errors = [r for r in reports if r[1] == "error"]
    rank, _, tb, _ = min(errors, key=lambda r: r[3])
    return RankError(rank, tb)


def _context() -> mp.context.BaseContext:
    """A forkserver context that has imported torch once, so each launch starts in well under 1 s.

    Spawn would re-import torch in every rank (seconds each); plain fork is unsafe after the
    parent has started OpenMP threads.
    """
    ctx = mp.get_context("forkserver")
    # torch._dynamo is imported by DDP, FSDP and optimizers: pay that import once, not per rank.
    # The harness brings the course GPT (labutils.nn, labutils.model) that every strategy builds.
    ctx.set_forkserver_preload(["torch", "torch.distributed", "torch._dynamo", "torch.optim",
                                "labutils.parallel.launch", "labutils.parallel.harness"])
    return ctx


def launch(
    worker: Callable[..., Any],
    world_size: int,
    *args: Any,
    timeout_s: float = 60.0,
    threads_per_rank: int | None = None,
) -> list[Any]:
    """Run ``worker(*args)`` on ``world_size`` gloo ranks and return their results by rank.

    Args:
        worker: a function defined at module level in an importable module (spawned processes
            re-import it by name; a function defined in a notebook cell cannot be pickled).
        world_size: number of ranks (processes), 1 to 64.
        *args: passed to the worker on every rank; they must be picklable.
        timeout_s: seconds for the whole run, start-up included; also the collectives' timeout.
        threads_per_rank: torch intra-op threads per rank; default shares the CPU cores evenly.

    Raises:
        RankError: a rank raised (the lowest such rank is reported, with its traceback).
        LaunchTimeout: not all ranks returned within ``timeout_s`` seconds.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int):
        raise TypeError(f"world_size must be an int, got {world_size!r}")
    if not 1 <= world_size <= 64:
        raise ValueError(f"world_size must be in [1, 64], got {world_size}")
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive finite number of seconds, got {timeout_s!r}")
    if not callable(worker):
        raise TypeError(f"worker must be callable, got {worker!r}")
    if getattr(worker, "__module__", None) == "__main__" or "<locals>" in getattr(worker, "__qualname__", ""):
        raise ValueError(
            f"worker {getattr(worker, '__qualname__', worker)!r} must be defined at module level in an "
            "importable module (e.g. labutils.parallel.demos), not in a notebook cell or a function"
        )
    threads = threads_per_rank or max(1, (os.cpu_count() or 1) // world_size)

    ctx = _context()
    results = ctx.Queue()
    # The parent owns the rendezvous store on a free port chosen by the OS: no hard-coded port,
    # and no race between picking a port and binding it.
    store = dist.TCPStore(HOST, 0, world_size + 1, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=timeout_s))
    procs = [
        ctx.Process(target=_rank_main, daemon=True,
                    args=(rank, world_size, store.port, timeout_s, threads, results, worker, args))
        for rank in range(world_size)
    ]
    deadline = time.monotonic() + timeout_s
    outputs: dict[int, Any] = {}
    dead_since: dict[int, float] = {}  # rank -> when its process was first seen dead
    try:
        for p in procs:
            p.start()
        while len(outputs) < world_size:
            try:
                rank, status, payload, _ = results.get(timeout=0.05)
            except queue.Empty:
                _check_progress(procs, outputs, dead_since, deadline, timeout_s)
                continue
            if status == "error":
                raise _first_error(results, (rank, status, payload, _))
            outputs[rank] = pickle.loads(payload)
    finally:
        _stop(procs)
        del store
    return [outputs[r] for r in range(world_size)]
