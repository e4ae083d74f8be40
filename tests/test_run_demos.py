"""Every strategy's demo runs under torchrun (gloo here; NCCL on GPUs), and matches one process.

`python -m labutils.parallel.run NAME ...` is how the course's parallel code runs past one
machine; here torchrun starts the ranks on this CPU with a local rendezvous on a free port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from labutils.parallel.harness import FP32_TOLERANCE
from labutils.parallel.run import DEMOS

LINE = re.compile(r"^\[rank (\d+)/(\d+)\] (\w+): (\S+)$", re.MULTILINE)
JOBS = {2: ["ddp", "zero", "tp", "pp", "cp", "ring_collectives"], 4: ["tp_dp", "pp_dp", "cp_dp"]}


def _torchrun(nproc: int, names: list[str]) -> dict[str, list[float]]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), "-m", "labutils.parallel.run", *names]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, list[float]] = {}
    for rank, world, name, value in LINE.findall(proc.stdout):
        assert int(world) == nproc
        out.setdefault(name, []).append(float(value))
    return out


@pytest.mark.parametrize("nproc", sorted(JOBS))
def test_every_strategy_demo_matches_one_process_under_torchrun(nproc):
    out = _torchrun(nproc, JOBS[nproc])
    assert sorted(out) == sorted(JOBS[nproc])
    for name, errors in out.items():
        assert len(errors) == nproc, name  # every rank reported
        assert max(errors) <= FP32_TOLERANCE, (name, errors)


def test_every_check_is_registered_and_covered():
    strategies = {"ddp", "zero", "tp", "pp", "cp", "tp_dp", "pp_dp", "cp_dp", "tp_pp_dp"}
    assert strategies <= set(DEMOS)
    # tp_pp_dp needs 8 ranks: tests/test_composition.py runs it through launch instead
    assert strategies - {n for names in JOBS.values() for n in names} == {"tp_pp_dp"}
