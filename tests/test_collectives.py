"""Collectives from send/recv (ring all-reduce, reduce-scatter, all-gather, naive all-reduce),
their byte counts, and the α–β model and its fit. Real gloo ranks via labutils.parallel.launch."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from labutils import hardware
from labutils.course import L1, lecture_cite
from labutils.parallel import RankError, alpha_beta, collectives, launch
from labutils.parallel.data import collective_workers

SIZES = [0, 1, 5, 12, 1001]  # 5, 1001 are not divisible by 2, 3 or 4; 0 and 1 give empty chunks


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ring_all_reduce_matches_dist_all_reduce_and_sends_the_formula(world_size):
    results = launch(collective_workers.check_all_reduce_worker, world_size, SIZES, "ring", timeout_s=60)
    for rank, per_size in enumerate(results):
        for numel, r in zip(SIZES, per_size):
            assert r["max_abs_diff"] <= 1e-12, (world_size, rank, numel)
            # exact per-rank count for any size: 2n - |c_r| - |c_{r+1}| elements of 8 bytes
            assert r["sent_bytes"] == 8 * collectives.ring_all_reduce_sent_elements(numel, world_size, rank)
            # it receives every chunk but its own and its left neighbour's, once per phase
            sizes = [b - a for a, b in collectives.chunk_bounds(numel, world_size)]
            assert r["received_bytes"] == 8 * (2 * numel - sizes[rank] - sizes[rank - 1])
    for i, numel in enumerate(SIZES):
        total = sum(res[i]["sent_bytes"] for res in results)
        assert total == 8 * 2 * (world_size - 1) * numel  # exactly 2(p-1)n over all ranks
    # where p divides n, every rank sends exactly 2(p-1)/p n bytes (Patarasuk & Yuan 2009)
    n = 12
    for res in results:
        assert res[SIZES.index(n)]["sent_bytes"] == collectives.ring_all_reduce_bytes_per_rank(8 * n, world_size)
        assert res[SIZES.index(n)]["messages_sent"] == 2 * (world_size - 1)


def test_naive_all_reduce_is_correct_and_root_sends_p_minus_1_copies():
    p, sizes = 3, [5, 12]
    both = launch(collective_workers.compare_all_reduce_worker, p, sizes, ("ring", "naive"), timeout_s=60)
    assert all(r["max_abs_diff"] <= 1e-12 for b in both for r in b["ring"])
    results = [b["naive"] for b in both]
    for rank, per_size in enumerate(results):
        for numel, r in zip(sizes, per_size):
            assert r["max_abs_diff"] <= 1e-12
            assert r["sent_bytes"] == collectives.naive_all_reduce_bytes_per_rank(8 * numel, p, rank)
    assert results[0][1]["sent_bytes"] == 2 * 8 * 12  # root: (p-1) n
    assert results[1][1]["sent_bytes"] == 8 * 12


@pytest.mark.parametrize("world_size", [3, 4])
def test_ring_reduce_scatter_and_all_gather(world_size):
    for r in launch(collective_workers.check_scatter_gather_worker, world_size, 7, timeout_s=60):
        assert torch.equal(r["scatter"], r["scatter_expected"])
        assert torch.equal(r["gather"].double(), r["gather_expected"])


def test_a_failing_rank_surfaces_as_an_error_not_a_hang():
    t0 = time.monotonic()
    with pytest.raises(RankError) as info:
        launch(collective_workers.ring_with_bad_rank_worker, 3, 1, timeout_s=30)
    assert info.value.rank == 1
    assert "contiguous" in str(info.value)
    assert time.monotonic() - t0 < 30


def test_chunk_bounds_cover_everything_like_tensor_split():
    for n in [0, 1, 5, 12, 1001]:
        for p in [1, 2, 3, 4, 7]:
            bounds = collectives.chunk_bounds(n, p)
            sizes = [b - a for a, b in bounds]
            assert sizes == [len(c) for c in torch.tensor_split(torch.arange(n), p)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n


def test_byte_formulas():
    assert collectives.ring_all_reduce_bytes_per_rank(1000, 4) == pytest.approx(1500)
    assert collectives.ring_all_reduce_bytes_per_rank(1000, 1) == 0
    # ring vs naive: the ring's per-rank traffic stays below 2n, the naive root's grows with p
    assert collectives.naive_all_reduce_bytes_per_rank(1000, 8, 0) == 7000
    assert collectives.naive_all_reduce_bytes_per_rank(1000, 8, 3) == 1000
    for p in range(1, 9):
        assert sum(collectives.ring_all_reduce_sent_elements(10, p, r) for r in range(p)) == 2 * (p - 1) * 10


def test_alpha_beta_time_formulas():
    a, b, n = 1e-5, 1e-9, 1e6
    assert alpha_beta.alpha_beta_time(n, 1, a, b) == 0.0
    assert alpha_beta.alpha_beta_time(n, 4, a, b, "ring") == pytest.approx(6 * a + 1.5 * n * b)
    assert alpha_beta.alpha_beta_time(n, 8, a, b, "tree") == pytest.approx(6 * (a + n * b))
    assert alpha_beta.alpha_beta_time(n, 8, a, b, "recursive_doubling") == pytest.approx(3 * (a + n * b))
    assert alpha_beta.alpha_beta_time(n, 8, a, b, "rabenseifner") == pytest.approx(6 * a + 1.75 * n * b)
    assert alpha_beta.alpha_beta_time(n, 4, a, b, "naive") == pytest.approx(6 * (a + n * b))
    # large messages: the ring beats the tree; tiny messages on many ranks: the tree wins
    assert alpha_beta.alpha_beta_time(1e9, 64, a, b, "ring") < alpha_beta.alpha_beta_time(1e9, 64, a, b, "tree")
    assert alpha_beta.alpha_beta_time(8, 64, a, b, "tree") < alpha_beta.alpha_beta_time(8, 64, a, b, "ring")


def test_lecture_bandwidths_are_cited_and_agree_with_hardware():
    assert hardware.NVSWITCH.bandwidth_bytes_per_s == 900e9
    assert hardware.INFINIBAND.bandwidth_bytes_per_s == 50e9
    for link in (hardware.NVSWITCH, hardware.INFINIBAND):
        assert link.source.startswith(lecture_cite(L1, "slide 'Training: Going beyond 1 node'"))
    assert alpha_beta.Link is hardware.Link  # one link model: the α–β pricing uses hardware's
    assert hardware.get("H100-SXM").interconnect_bytes_per_s == hardware.NVSWITCH.bandwidth_bytes_per_s
    # 7B bf16 gradients on a ring of 8 GPUs over NVSwitch: 2·7/8·14e9 B / 900 GB/s + 14 α
    t = alpha_beta.link_all_reduce_time(14e9, 8, hardware.NVSWITCH)
    assert t == pytest.approx(2 * 7 / 8 * 14e9 / 900e9 + 14 * hardware.NVSWITCH.latency_s)
    assert 0.02 < t < 0.03


@pytest.mark.parametrize("algorithm", ["ring", "tree", "rabenseifner"])
def test_fit_recovers_known_alpha_beta_from_synthetic_timings(algorithm):
    alpha, beta, p = 25e-6, 1 / 3e9, 4
    sizes = np.logspace(2, 8, 13)
    rng = np.random.default_rng(0)
    times = np.array([alpha_beta.alpha_beta_time(n, p, alpha, beta, algorithm) for n in sizes])
    exact = alpha_beta.fit_alpha_beta(sizes, times, p, algorithm)
    assert exact.alpha_s == pytest.approx(alpha, rel=1e-6)
    assert exact.beta_s_per_byte == pytest.approx(beta, rel=1e-6)
    assert exact.max_rel_error < 1e-6
    noisy = alpha_beta.fit_alpha_beta(sizes, times * (1 + 0.02 * rng.standard_normal(len(sizes))), p, algorithm)
    assert noisy.alpha_s == pytest.approx(alpha, rel=0.1)
    assert noisy.beta_s_per_byte == pytest.approx(beta, rel=0.05)
    assert noisy.bandwidth_bytes_per_s == pytest.approx(3e9, rel=0.05)
    assert noisy.predict(1e6) == pytest.approx(alpha_beta.alpha_beta_time(1e6, p, noisy.alpha_s,
                                                                 noisy.beta_s_per_byte, algorithm))


def test_measured_timings_give_a_positive_fit():
    # Real timings on a shared 2-core machine are noisy (a 2 MiB message once took no longer than
    # a 1 KiB one), so the largest message is 32 MiB: there the bandwidth term dominates any jitter.
    # The assertions are on signs and order, never on speeds.
    sizes = [2**10, 2**14, 2**18, 2**25]
    times = np.array(collective_workers.measure_all_reduce(sizes, 2, "ring", repeats=3))
    assert times.shape == (4,) and np.all(times > 0)
    assert times[-1] > times[0], "a 32 MiB all-reduce must take longer than a 1 KiB one"
    fit = alpha_beta.fit_alpha_beta(sizes, times, 2)
    assert fit.alpha_s >= 0 and fit.beta_s_per_byte >= 0 and math.isfinite(fit.max_rel_error)
    assert fit.predict(sizes[-1]) > fit.predict(sizes[0])


def test_bus_bandwidth():
    assert alpha_beta.bus_bandwidth_bytes_per_s(1e9, 1.0, 4) == pytest.approx(1.5e9)


def test_bad_input():
    with pytest.raises(TypeError, match="tensor"):
        collectives.ring_all_reduce([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype"):
        collectives.ring_all_reduce(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="contiguous"):
        collectives.ring_all_reduce(torch.ones(3, 2).t())
    with pytest.raises(RuntimeError, match="process group"):
        collectives.ring_all_reduce(torch.ones(3))  # no group in the test process
    with pytest.raises(ValueError, match="world_size"):
        alpha_beta.alpha_beta_time(10, 0, 1e-6, 1e-9)
    with pytest.raises(TypeError, match="world_size"):
        alpha_beta.alpha_beta_time(10, 2.0, 1e-6, 1e-9)
    with pytest.raises(ValueError, match="n_bytes"):
        alpha_beta.alpha_beta_time(-1, 2, 1e-6, 1e-9)
    with pytest.raises(ValueError, match="alpha_s"):
        alpha_beta.alpha_beta_time(10, 2, float("nan"), 1e-9)
    with pytest.raises(ValueError, match="algorithm"):
        alpha_beta.alpha_beta_time(10, 2, 1e-6, 1e-9, algorithm="butterfly")
    with pytest.raises(ValueError, match="distinct"):
        alpha_beta.fit_alpha_beta([10, 10], [1e-3, 1e-3], 2)
    with pytest.raises(ValueError, match="times_s"):
        alpha_beta.fit_alpha_beta([10, 100], [1e-3, 0.0], 2)
    with pytest.raises(ValueError, match="equal length"):
        alpha_beta.fit_alpha_beta([10, 100, 1000], [1e-3, 2e-3], 2)
    with pytest.raises(ValueError, match="rank"):
        collectives.ring_all_reduce_sent_elements(10, 2, 2)
    with pytest.raises(ValueError, match="bandwidth"):
        hardware.Link("x", 0.0, 1e-6, "test")
    with pytest.raises(ValueError, match="impl"):
        collective_workers._all_reduce_by("nccl")


def _free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it; never a hard-coded one)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("world_size", [3, 4])
def test_ring_collectives_under_torchrun(world_size):
    """The ring collectives run unchanged under torchrun (env:// rendezvous, gloo on CPU).

    Three or more ranks is where unbatched isend/irecv can deadlock under NCCL; the sends and
    receives are batched (``batch_isend_irecv``) and here every rank must finish with the exact
    sums (float64 sums of small integers are exact).
    """
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc-per-node", str(world_size), "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "labutils.parallel.run", "ring_collectives",
           "--timeout-s", "60"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import re

    found = re.findall(rf"\[rank (\d+)/{world_size}\] ring_collectives: (-?\d+\.\d+(?:e[+-]?\d+)?)",
                       proc.stdout)
    assert sorted(int(r) for r, _ in found) == list(range(world_size)), proc.stdout
    assert all(float(err) == 0.0 for _, err in found), proc.stdout


# ----------------------------------------------------------------------------------------------
# Bad input, swept over every public cost-model function: an error naming the argument
# ----------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_POS_INT = [0, -1, 2.5, NAN, INF, True, "1", None]
BAD_NON_NEG_INT = [-1, 2.5, NAN, INF, True, "1", None]
BAD_POS_REAL = [0, 0.0, -1, NAN, INF, -INF, True, "1", None]
BAD_NON_NEG_REAL = [-1, -1e-9, NAN, INF, -INF, True, "1", None]

COLLECTIVES_BAD_CASES = [
    (lambda x: collectives.chunk_bounds(x, 2), "numel", BAD_NON_NEG_INT),
    (lambda x: collectives.chunk_bounds(10, x), "world_size", BAD_POS_INT),
    (lambda x: collectives.ring_all_reduce_bytes_per_rank(x, 4), "n_bytes", BAD_NON_NEG_REAL),
    (lambda x: collectives.ring_all_reduce_bytes_per_rank(1e6, x), "world_size", BAD_POS_INT),
    (lambda x: collectives.ring_all_reduce_sent_elements(x, 4, 0), "numel", BAD_NON_NEG_INT),
    (lambda x: collectives.ring_all_reduce_sent_elements(10, x, 0), "world_size", BAD_POS_INT),
    (lambda x: collectives.ring_all_reduce_sent_elements(10, 4, x), "rank", [*BAD_NON_NEG_INT, 4]),
    (lambda x: collectives.naive_all_reduce_bytes_per_rank(x, 4, 0), "n_bytes", BAD_NON_NEG_REAL),
    (lambda x: collectives.naive_all_reduce_bytes_per_rank(1e6, x, 0), "world_size", BAD_POS_INT),
    (lambda x: collectives.naive_all_reduce_bytes_per_rank(1e6, 4, x), "rank", [*BAD_NON_NEG_INT, 4]),
    (lambda x: collectives.naive_all_reduce_bytes_per_rank(1e6, 4, 0, x), "root", [*BAD_NON_NEG_INT, 4]),
    (lambda x: alpha_beta.alpha_beta_coefficients(x, 4), "n_bytes", BAD_NON_NEG_REAL),
    (lambda x: alpha_beta.alpha_beta_coefficients(1e6, x), "world_size", BAD_POS_INT),
    (lambda x: alpha_beta.alpha_beta_coefficients(1e6, 4, x), "algorithm", ["butterfly", None]),
    (lambda x: alpha_beta.alpha_beta_time(1e6, 4, x, 1e-9), "alpha_s", BAD_NON_NEG_REAL),
    (lambda x: alpha_beta.alpha_beta_time(1e6, 4, 1e-6, x), "beta_s_per_byte", BAD_NON_NEG_REAL),
    (lambda x: alpha_beta.link_all_reduce_time(1e6, 4, x), "link", [None, "nvswitch", 900e9]),
    (lambda x: alpha_beta.link_all_reduce_time(x, 4, hardware.NVSWITCH), "n_bytes", BAD_NON_NEG_REAL),
    (lambda x: alpha_beta.bus_bandwidth_bytes_per_s(x, 1.0, 4), "n_bytes", BAD_NON_NEG_REAL),
    (lambda x: alpha_beta.bus_bandwidth_bytes_per_s(1e6, x, 4), "time_s", BAD_POS_REAL),
    (lambda x: alpha_beta.bus_bandwidth_bytes_per_s(1e6, 1.0, x), "world_size", [*BAD_POS_INT, 1]),
    (lambda x: alpha_beta.fit_alpha_beta(x, [1e-3, 2e-3], 2), "n_bytes", [None, [1.0, NAN], [-1.0, 10.0]]),
    (lambda x: alpha_beta.fit_alpha_beta([10, 100], x, 2), "times_s", [None, [1e-3, INF], [1e-3, -1.0]]),
    (lambda x: alpha_beta.fit_alpha_beta([10, 100], [1e-3, 2e-3], x), "world_size", [*BAD_POS_INT, 1]),
    (lambda x: hardware.Link("x", x, 1e-6, "test"), "bandwidth_bytes_per_s", BAD_POS_REAL),
    (lambda x: hardware.Link("x", 1e9, x, "test"), "latency_s", BAD_NON_NEG_REAL),
]


@pytest.mark.parametrize("call, name, bad_values", COLLECTIVES_BAD_CASES,
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(COLLECTIVES_BAD_CASES)])
def test_every_cost_function_refuses_bad_input(call, name, bad_values):
    """Negative, zero, NaN, inf, bool and wrong types: ValueError or TypeError naming the
    argument (a time of True seconds, a bool bandwidth and a string root used to get through)."""
    for bad in bad_values:
        with pytest.raises((ValueError, TypeError), match=name):
            call(bad)
