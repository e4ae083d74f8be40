"""How much network a training step needs: per-device bandwidth for perfect overlap, and the
step time when the link falls short (Chapter 12, "What a supercomputer must offer").

Lecture 002 (notes on "Evaluation of Pre-training LLMs on Supercomputers", Yin et al. 2023,
Sec. 8.3) states that "for theoretical peak and achievable performance, the minimum per-device
communication bandwidth needed is 37 and 94 GB/s", against 25 GB/s per device on Crusher.
The paper's derivation (its conclusions, as transcribed in public notes, see
:data:`YIN_1T_CASE`): GPT-1T, sequences of 2048 tokens, 4 per GPU per step, FSDP's volume
C_A ≈ 3·M_p, and

    t_step = T_step / R  = 4.9e4 / R[TFLOP/s] s,    b_ideal = C_A / t_step = 0.24 · R[TFLOP/s] GB/s.

The coefficient 0.24 needs M_p = 4 bytes per parameter (fp32 communication); with 16-bit
all-gathers it halves. Higher R shortens the step and so *raises* the bandwidth needed: the
peak (383 TFLOP/s) gives 94 GB/s and "about 40 %" of it gives 37 GB/s, the reverse of the
order in the quoted sentence.
"""

from __future__ import annotations

from labutils.flops import training_flops
from labutils.memory import fsdp_comm_volume
from labutils.hardware import Link
from labutils.validate import fraction, integer, positive

#: The paper's GPT-1T bandwidth case, with where each number comes from.
YIN_1T_CASE = {
    "n_params": 10**12,
    "seq_len": 2048,
    "samples_per_device": 4,  # "one GPU can fit 4 samples per batch"
    "bytes_per_element": 4,  # inferred: the printed 0.24 GB/s per TFLOP/s needs fp32 volumes
    "achievable_fraction": 0.4,  # "the achievable performance is about 40% of the theoretical peak"
    "link_bytes_per_s": 25e9,  # "the current 25 GB/s per-device on Crusher"
    "printed_step_flops": 4.9e16,  # "t_step = 4.9 x 10^4 / R_FLOPS" with R in TFLOP/s
    "printed_coefficient": 0.24,  # "b_ideal (GB/s) = C_A / t_step = 0.24 x R_FLOPS"
    "printed_bandwidth_gb_s": {"peak": 94.0, "achievable": 37.0},  # lecture 002, Sec. 8.3
    "source": ("Yin et al. 2023 (J. Supercomputing 79), conclusions, as transcribed at "
               "https://lelepado01.github.io/FoundationModel4ClimateNotes/"
               "training_llms_supercomp.html; lecture 002, Sec. 8.3 for 37, 94 and 25 GB/s"),
}


#: Summit's links, for lecture 002's DeepSpeed-Megatron layout in the planner. Latencies are the
#: same assumed orders of magnitude as labutils.hardware's links.
SUMMIT_GPUS_PER_NODE = 6  # OLCF Summit user guide: six V100 per node
SUMMIT_NVLINK = Link(
    "NVLink 2 (Summit, inside a node)", 50e9, 5e-6,
    "NVIDIA V100 datasheet: NVLink 300 GB/s over 6 links, i.e. 25 GB/s per link and direction; "
    "we assume two links between GPU peers (50 GB/s) and ignore the slower socket-to-socket "
    "X-Bus; latency assumed")
SUMMIT_NODE_LINK = Link(
    "EDR InfiniBand (Summit, per GPU)", 25e9 / SUMMIT_GPUS_PER_NODE, 10e-6,
    "Yin et al. 2023, conclusions (public transcript): Summit's node bandwidth is 4x smaller "
    "than Frontier's 4 x 25 GB/s, i.e. 25 GB/s per node, shared by its six GPUs; latency assumed")


def step_flops_per_device(n_params: float, tokens_per_device: float) -> float:
    """FLOPs one device computes per step: 6·N per token (forward + backward) × its tokens."""
    return training_flops(n_params, tokens_per_device)


def required_bandwidth_bytes_per_s(comm_bytes: float, compute_s: float) -> float:
    """Per-device bandwidth (bytes/s) that moves ``comm_bytes`` in ``compute_s`` seconds.

    With communication fully overlapped, a step stays compute-bound exactly when the link is at
    least this fast (the paper's b_ideal = C / t_step).
    """
    return positive("comm_bytes", comm_bytes) / positive("compute_s", compute_s)


def fsdp_step_comm_bytes(n_params: int, bytes_per_element: int = 4) -> float:
    """Bytes one FSDP device sends per step: C_A ≈ 3·Ψ elements (lecture 002, Sec. 5.1.2)."""
    bpe = integer("bytes_per_element", bytes_per_element, 1, 8)
    return fsdp_comm_volume(n_params) * bpe


def fsdp_required_bandwidth_bytes_per_s(n_params: int, tokens_per_device: float,
                                        device_flops_per_s: float,
                                        bytes_per_element: int = 4) -> float:
    """b_ideal for FSDP: C_A bytes over the step's compute time at ``device_flops_per_s``.

    ``tokens_per_device`` tokens per device per step; the result is in bytes/s.
    """
    compute_s = (step_flops_per_device(n_params, tokens_per_device)
                 / positive("device_flops_per_s", device_flops_per_s))
    return required_bandwidth_bytes_per_s(fsdp_step_comm_bytes(n_params, bytes_per_element),
                                          compute_s)


def step_time_s(compute_s: float, comm_bytes: float, link_bytes_per_s: float, *,
                overlap: float = 1.0) -> float:
    """Step time in seconds when ``comm_bytes`` cross a link of ``link_bytes_per_s`` per device.

    ``overlap`` is the share of the communication that can hide behind compute (1: perfect
    overlap, the step is max(compute, comm); 0: none, compute + comm).
    """
    compute = positive("compute_s", compute_s)
    comm = positive("comm_bytes", comm_bytes) / positive("link_bytes_per_s", link_bytes_per_s)
    hidden = fraction("overlap", overlap) * min(compute, comm)
    return compute + comm - hidden


def scaling_efficiency(compute_s: float, step_s: float) -> float:
    """Fraction of linear scaling kept: the compute-only step over the real step (≤ 1)."""
    compute = positive("compute_s", compute_s)
    step = positive("step_s", step_s)
    if step < compute:
        raise ValueError(f"step_s must be >= compute_s = {compute}, got {step}")
    return compute / step
