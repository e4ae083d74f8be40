"""Data-parallel scaling in the α–β model: where adding GPUs stops paying.

A data-parallel step is compute (``6·N`` FLOPs per token, lecture 000_f52c65b7512ce437.txt;
forward one third, backward two thirds) plus an all-reduce of the gradients
(:func:`labutils.parallel.alpha_beta.alpha_beta_time`), bucket by bucket, overlapped with the
backward pass as PyTorch DDP does (Li et al. 2020). Peak FLOP/s come from
:mod:`labutils.hardware`. Two limits end DP scaling (Chapter 5):

* **communication**: in strong scaling (fixed global batch) per-GPU compute falls as 1/p while
  the all-reduce does not fall (``2(p−1)/p·n·β`` tends to ``2nβ``, and ring latency grows with p);
* **the critical batch size**: in weak scaling (fixed per-GPU batch) the global batch grows with
  p, and past the critical batch a larger batch no longer cuts the number of steps
  (McCandlish et al. 2018: steps ``S = S_min·(1 + B_crit/B)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labutils import hardware
from labutils.flops import BACKWARD_TO_FORWARD_FLOPS, training_flops
from labutils.hardware import INFINIBAND, NVSWITCH, Link, check_link
from labutils.parallel.alpha_beta import ALGORITHMS, alpha_beta_time
from labutils.parallel.data.ddp import DEFAULT_BUCKET_BYTES
from labutils.validate import non_negative, number, positive, positive_int

FORWARD_FRACTION = 1.0 / (1 + BACKWARD_TO_FORWARD_FLOPS)  # forward 2N of 6N FLOPs per token

# Kaplan et al. 2020, Sec. 5.1: B_crit(L) ≈ B* / L^(1/α_B), B* ≈ 2e8 tokens, α_B ≈ 0.21
KAPLAN_B_STAR_TOKENS = 2e8
KAPLAN_ALPHA_B = 0.21


@dataclass(frozen=True)
class DPCluster:
    """A data-parallel job: the model, the accelerator and the network it all-reduces over."""

    n_params: float  # parameters N (all of them are gradients to all-reduce)
    accelerator: str = "A100-80GB"  # a labutils.hardware name; its dense peak prices compute
    dtype: str = "bf16"  # dtype of the matmuls (selects the peak)
    mfu: float = 0.4  # assumed fraction of peak that forward/backward reach (0, 1]
    grad_bytes_per_param: float = 2.0  # bf16 gradients
    gpus_per_node: int = 8  # rings of up to this many GPUs stay on the intra-node link
    intra_link: Link = NVSWITCH  # lecture 001: 900 GB/s
    inter_link: Link = INFINIBAND  # lecture 001: 50 GB/s
    bucket_bytes: float = DEFAULT_BUCKET_BYTES
    algorithm: str = "ring"
    overlap: bool = True  # start each bucket's all-reduce during backward

    def __post_init__(self) -> None:
        positive("n_params", self.n_params)
        hardware.get(self.accelerator).peak_flops(self.dtype)  # raises on a bad name or dtype
        number("mfu", self.mfu, low=0.0, high=1.0, low_open=True)
        positive("grad_bytes_per_param", self.grad_bytes_per_param)
        if isinstance(self.gpus_per_node, bool) or not isinstance(self.gpus_per_node, int) \
                or self.gpus_per_node < 1:
            raise ValueError(f"gpus_per_node must be an int >= 1, got {self.gpus_per_node!r}")
        for name in ("intra_link", "inter_link"):
            check_link(name, getattr(self, name))
        positive("bucket_bytes", self.bucket_bytes)
        if not isinstance(self.overlap, bool):
            raise TypeError(f"overlap must be a bool, got {self.overlap!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}")

    @property
    def grad_bytes(self) -> float:
        """Bytes all-reduced per step: N × bytes per gradient."""
        return self.n_params * self.grad_bytes_per_param

    @property
    def achieved_flops(self) -> float:
        """FLOP/s one GPU sustains: hardware peak × mfu."""
        return hardware.get(self.accelerator).peak_flops(self.dtype) * self.mfu

    def link_for(self, world_size: int) -> Link:
        """The slowest link a ring of ``world_size`` GPUs crosses."""
        return hardware.link_for(positive_int("world_size", world_size), self.gpus_per_node,
                                 self.intra_link, self.inter_link)


def _check_cluster(cluster: object) -> DPCluster:
    if not isinstance(cluster, DPCluster):
        raise TypeError(f"cluster must be a DPCluster, got {type(cluster).__name__}")
    return cluster


def _non_negative_list(name: str, values: object) -> list[float]:
    """``values`` as a list of finite floats >= 0 (bytes or seconds per bucket)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of numbers >= 0, got {values!r}")
    return [non_negative(f"{name}[{i}]", v) for i, v in enumerate(values)]


def _world_sizes(world_sizes: object) -> list[int]:
    if isinstance(world_sizes, (str, bytes)) or not isinstance(world_sizes, Sequence):
        raise TypeError(f"world_sizes must be a sequence of ints >= 1, got {world_sizes!r}")
    return [positive_int("world_size", p) for p in world_sizes]


def compute_time_s(cluster: DPCluster, tokens_per_gpu: float) -> tuple[float, float]:
    """(forward_s, backward_s) for ``tokens_per_gpu`` tokens: 6·N·tokens FLOPs at peak × mfu."""
    _check_cluster(cluster)
    tokens = positive("tokens_per_gpu", tokens_per_gpu)
    total_s = training_flops(cluster.n_params, tokens) / cluster.achieved_flops  # C ≈ 6·N·D
    return FORWARD_FRACTION * total_s, (1 - FORWARD_FRACTION) * total_s


def bucket_sizes_bytes(total_bytes: float, bucket_bytes: float) -> list[float]:
    """Split ``total_bytes`` of gradients into full buckets of ``bucket_bytes`` and a remainder."""
    total = non_negative("total_bytes", total_bytes)
    size = positive("bucket_bytes", bucket_bytes)
    full = int(total // size)
    rest = total - full * size
    return [size] * full + ([rest] if rest > 0 else [])


def simulate_overlap(forward_s: float, backward_s: float, bucket_bytes: Sequence[float],
                     bucket_comm_s: Sequence[float]) -> tuple[float, float]:
    """Step time and exposed communication when bucket all-reduces overlap the backward pass.

    Bucket i is ready once backward has produced its gradients, in proportion to bytes
    (backward FLOPs are proportional to parameters); all-reduces run one at a time on the link,
    each starting when its bucket is ready and the previous one has finished.
    Returns ``(step_s, exposed_comm_s)`` with ``step_s = forward + backward + exposed``.
    """
    fwd, bwd = non_negative("forward_s", forward_s), non_negative("backward_s", backward_s)
    bucket_bytes = _non_negative_list("bucket_bytes", bucket_bytes)
    bucket_comm_s = _non_negative_list("bucket_comm_s", bucket_comm_s)
    if len(bucket_bytes) != len(bucket_comm_s):
        raise ValueError("bucket_bytes and bucket_comm_s must have the same length")
    total = float(sum(bucket_bytes))
    link_free, produced = fwd, 0.0
    for nbytes, comm in zip(bucket_bytes, bucket_comm_s):
        produced += nbytes
        ready = fwd + bwd * (produced / total if total > 0 else 1.0)
        link_free = max(link_free, ready) + comm
    end = max(fwd + bwd, link_free)
    return end, end - fwd - bwd


@dataclass(frozen=True)
class DPStep:
    """One modelled data-parallel step on ``world_size`` GPUs (seconds)."""

    world_size: int
    tokens_per_gpu: float
    compute_s: float  # forward + backward
    comm_s: float  # all bucket all-reduces back to back
    exposed_comm_s: float  # the part of comm_s not hidden behind backward
    step_s: float

    @property
    def tokens_per_s(self) -> float:
        """Cluster throughput: world_size × tokens_per_gpu / step_s."""
        return self.world_size * self.tokens_per_gpu / self.step_s


def dp_step(cluster: DPCluster, world_size: int, tokens_per_gpu: float) -> DPStep:
    """Model one step: compute from the hardware peak, all-reduce bucket by bucket (α–β)."""
    _check_cluster(cluster)
    p = positive_int("world_size", world_size)
    fwd, bwd = compute_time_s(cluster, tokens_per_gpu)
    link = cluster.link_for(p)
    sizes = bucket_sizes_bytes(cluster.grad_bytes, cluster.bucket_bytes)
    comms = [alpha_beta_time(b, p, link.latency_s, link.beta_s_per_byte, cluster.algorithm)
             for b in sizes]
    comm_s = float(sum(comms))
    if p == 1:
        step_s, exposed = fwd + bwd, 0.0
    elif cluster.overlap:
        step_s, exposed = simulate_overlap(fwd, bwd, sizes, comms)
    else:
        step_s, exposed = fwd + bwd + comm_s, comm_s
    return DPStep(p, float(tokens_per_gpu), fwd + bwd, comm_s, exposed, step_s)


def gradient_all_reduce_time_s(n_params: float, world_size: int, link: Link,
                               bytes_per_param: float = 2.0, algorithm: str = "ring") -> float:
    """Seconds to all-reduce ``n_params`` gradients of ``bytes_per_param`` bytes in one message."""
    n_bytes = positive("n_params", n_params) * positive("bytes_per_param", bytes_per_param)
    if not isinstance(link, Link):
        raise TypeError(f"link must be a Link, got {link!r}")
    return alpha_beta_time(n_bytes, positive_int("world_size", world_size), link.latency_s, link.beta_s_per_byte,
                           algorithm)


@dataclass(frozen=True)
class ScalingPoint:
    """One row of a scaling study."""

    world_size: int
    global_batch_tokens: float
    step: DPStep
    speedup: float  # throughput relative to one GPU (strong: t1/tp; weak: p·t1/tp)
    efficiency: float  # speedup / world_size
    time_to_target_speedup: float  # speedup counting the extra steps a batch past B_crit needs
    feasible: bool  # False when a GPU would get less than one sequence


def kaplan_critical_batch_tokens(loss_nats: float) -> float:
    """Critical batch in tokens at a given loss: ``B* / L^(1/α_B)`` (Kaplan et al. 2020, Sec. 5.1).

    Kaplan's fit was made on WebText2 losses (nats/token); use it for orders of magnitude.
    """
    loss = positive("loss_nats", loss_nats)
    return KAPLAN_B_STAR_TOKENS / loss ** (1.0 / KAPLAN_ALPHA_B)


def steps_factor(global_batch_tokens: float, critical_batch_tokens: float) -> float:
    """Steps to a target loss relative to the fewest possible, ``S/S_min = 1 + B_crit/B``.

    McCandlish et al. 2018 find ``(S/S_min − 1)(E/E_min − 1) = 1`` with ``E = B·S`` examples,
    which gives this with ``B_crit = E_min/S_min``: about ``B_crit/B`` well below the critical
    batch (twice the batch, half the steps), about 1 well above it (more batch buys nothing)."""
    b = positive("global_batch_tokens", global_batch_tokens)
    return 1.0 + positive("critical_batch_tokens", critical_batch_tokens) / b


def strong_scaling(cluster: DPCluster, world_sizes: Sequence[int], global_batch_seqs: int,
                   seq_len: int) -> list[ScalingPoint]:
    """Fixed global batch of ``global_batch_seqs`` sequences split over more and more GPUs.

    DP cannot split a sequence: with more GPUs than sequences the row is marked infeasible
    (it is priced with one sequence per GPU, i.e. idle GPUs are not modelled).
    """
    gb, T = positive_int("global_batch_seqs", global_batch_seqs), positive_int("seq_len", seq_len)
    world_sizes = _world_sizes(world_sizes)
    t1 = dp_step(cluster, 1, gb * T).step_s
    rows = []
    for p in world_sizes:
        p = positive_int("world_size", p)
        per_gpu_seqs = gb / p
        feasible = per_gpu_seqs >= 1
        step = dp_step(cluster, p, max(per_gpu_seqs, 1.0) * T)
        speedup = t1 / step.step_s if feasible else float("nan")
        rows.append(ScalingPoint(p, gb * T, step, speedup, speedup / p, speedup, feasible))
    return rows


def weak_scaling(cluster: DPCluster, world_sizes: Sequence[int], per_gpu_batch_seqs: int,
                 seq_len: int, critical_batch_tokens: float | None = None) -> list[ScalingPoint]:
    """Fixed per-GPU batch; the global batch grows with the number of GPUs.

    ``speedup`` is throughput relative to one GPU. ``time_to_target_speedup`` compares the time
    to reach a target loss, ``S(B)·t_step``, with ``S ∝ 1 + B_crit/B`` (McCandlish et al. 2018):
    past the critical batch more GPUs buy throughput but not a shorter run. Without
    ``critical_batch_tokens`` (B_crit = ∞: every token is as useful) it equals ``speedup``.
    """
    b, T = positive_int("per_gpu_batch_seqs", per_gpu_batch_seqs), positive_int("seq_len", seq_len)
    world_sizes = _world_sizes(world_sizes)
    s1 = dp_step(cluster, 1, b * T)
    rows = []
    for p in world_sizes:
        p = positive_int("world_size", p)
        step = dp_step(cluster, p, b * T)
        speedup = p * s1.step_s / step.step_s  # tokens/s relative to one GPU
        global_tokens = p * b * T
        if critical_batch_tokens is None:
            ttt = speedup
        else:  # [S(B_1)·t_1] / [S(B_p)·t_p]
            ttt = (s1.step_s / step.step_s) * (steps_factor(b * T, critical_batch_tokens)
                                               / steps_factor(global_tokens, critical_batch_tokens))
        rows.append(ScalingPoint(p, global_tokens, step, speedup, speedup / p, ttt, True))
    return rows
