"""The α–β model that prices a collective, and the fit that recovers α and β from timings.

Chapter 5. Sending a message of m bytes costs α + m·β (α: seconds per message, β: seconds per
byte). :func:`alpha_beta_time` prices an all-reduce as ``a·α + b·β`` for each algorithm
(Thakur, Rabenseifner & Gropp 2005), :func:`link_all_reduce_time` does it on a
:class:`labutils.hardware.Link`, and :func:`fit_alpha_beta` recovers α and β from measured
timings. Every cost model of the parallel package (data, tensor, context) prices its
collectives here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labutils.hardware import Link
from labutils.validate import integer, non_negative, positive

ALGORITHMS = ("ring", "tree", "recursive_doubling", "rabenseifner", "naive")


def alpha_beta_coefficients(n_bytes: float, world_size: int,
                            algorithm: str = "ring") -> tuple[float, float]:
    """``(a, b)`` such that an all-reduce of ``n_bytes`` on ``world_size`` ranks takes
    ``a·α + b·β`` seconds (reduction arithmetic ignored; ⌈log2 p⌉ rounds for the log-depth ones).

    * ring: ``2(p−1)·α + 2(p−1)/p·n·β`` (Patarasuk & Yuan 2009; Thakur et al. 2005)
    * tree: binomial-tree reduce then broadcast, ``2⌈lg p⌉·(α + n·β)``
    * recursive_doubling: ``⌈lg p⌉·(α + n·β)`` (Thakur et al. 2005, short messages)
    * rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather,
      ``2⌈lg p⌉·α + 2(p−1)/p·n·β`` (Thakur et al. 2005, long messages)
    * naive: all to a root and back, the root's link serialises ``2(p−1)`` messages of n bytes
    """
    n = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 1)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if p == 1:
        return 0.0, 0.0
    lg = math.ceil(math.log2(p))
    if algorithm == "ring":
        return 2.0 * (p - 1), 2.0 * (p - 1) / p * n
    if algorithm == "tree":
        return 2.0 * lg, 2.0 * lg * n
    if algorithm == "recursive_doubling":
        return float(lg), lg * n
    if algorithm == "rabenseifner":
        return 2.0 * lg, 2.0 * (p - 1) / p * n
    return 2.0 * (p - 1), 2.0 * (p - 1) * n  # naive


def alpha_beta_time(n_bytes: float, world_size: int, alpha_s: float, beta_s_per_byte: float,
                    algorithm: str = "ring") -> float:
    """Seconds for an all-reduce of ``n_bytes`` over ``world_size`` ranks in the α–β model.

    ``alpha_s``: seconds per message (latency); ``beta_s_per_byte``: seconds per byte
    (1 / link bandwidth). See :func:`alpha_beta_coefficients` for each algorithm's formula.
    """
    alpha_s = non_negative("alpha_s", alpha_s)
    beta_s_per_byte = non_negative("beta_s_per_byte", beta_s_per_byte)
    a, b = alpha_beta_coefficients(n_bytes, world_size, algorithm)
    return a * alpha_s + b * beta_s_per_byte


def link_all_reduce_time(n_bytes: float, world_size: int, link: Link,
                         algorithm: str = "ring") -> float:
    """:func:`alpha_beta_time` with α and β taken from a :class:`Link` (e.g. ``NVSWITCH``)."""
    if not isinstance(link, Link):
        raise TypeError(f"link must be a Link (e.g. NVSWITCH, INFINIBAND), got {link!r}")
    return alpha_beta_time(n_bytes, world_size, link.latency_s, link.beta_s_per_byte, algorithm)


def bus_bandwidth_bytes_per_s(n_bytes: float, time_s: float, world_size: int) -> float:
    """nccl-tests' "bus bandwidth" of an all-reduce: ``n/t · 2(p−1)/p`` bytes/s.

    It is what each link carried, so it tends to 1/β for large messages on a ring
    (nccl-tests, doc/PERFORMANCE.md).
    """
    n = non_negative("n_bytes", n_bytes)
    p = integer("world_size", world_size, 2)
    time_s = positive("time_s", time_s)
    return n / time_s * 2.0 * (p - 1) / p


@dataclass(frozen=True)
class AlphaBetaFit:
    """α (s/message) and β (s/byte) fitted to all-reduce timings of one algorithm and size p."""

    alpha_s: float
    beta_s_per_byte: float
    world_size: int
    algorithm: str
    max_rel_error: float  # largest |model − measured| / measured over the fitted points

    @property
    def bandwidth_bytes_per_s(self) -> float:
        """1 / β in bytes/s (inf when β = 0)."""
        return math.inf if self.beta_s_per_byte == 0 else 1.0 / self.beta_s_per_byte

    def predict(self, n_bytes: float) -> float:
        """Modelled all-reduce time in seconds for ``n_bytes``."""
        return alpha_beta_time(n_bytes, self.world_size, self.alpha_s, self.beta_s_per_byte,
                               self.algorithm)


def fit_alpha_beta(n_bytes: Sequence[float], times_s: Sequence[float], world_size: int,
                   algorithm: str = "ring") -> AlphaBetaFit:
    """Fit α, β ≥ 0 to measured all-reduce times by non-negative least squares.

    Residuals are relative (each row divided by its measured time), so that microsecond
    timings of small messages weigh as much as the seconds of large ones: α comes from the
    small messages, β from the large ones. Needs at least two distinct sizes.
    """
    from scipy.optimize import nnls

    x = np.asarray(n_bytes, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if x.ndim != 1 or t.ndim != 1 or len(x) != len(t):
        raise ValueError(f"n_bytes and times_s must be 1-D and of equal length, got shapes "
                         f"{x.shape} and {t.shape}")
    if not (np.all(np.isfinite(x)) and np.all(x >= 0)):
        raise ValueError("n_bytes must be finite and >= 0")
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValueError("times_s must be finite and > 0 seconds")
    if len(np.unique(x)) < 2:
        raise ValueError("need timings at two or more distinct message sizes (n_bytes)")
    p = integer("world_size", world_size, 2)
    design = np.array([alpha_beta_coefficients(n, p, algorithm) for n in x])  # (m, 2)
    weighted = design / t[:, None]  # relative residuals: (a·α + b·β)/t − 1
    scale = np.linalg.norm(weighted, axis=0)  # columns differ by ~1e7; rescale for nnls
    coef, _ = nnls(weighted / scale, np.ones_like(t))
    alpha_s, beta = (coef / scale).tolist()
    model = design @ np.array([alpha_s, beta])
    return AlphaBetaFit(alpha_s, beta, p, algorithm, float(np.max(np.abs(model - t) / t)))
