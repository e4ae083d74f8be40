"""Time and energy of a full training run on a whole supercomputer, and what the measured power
of LLM training says about its efficiency (Chapter 12, "What a supercomputer must offer").

Lecture 002 (notes on "Evaluation of Pre-training LLMs on Supercomputers", Yin et al. 2023)
projects a run as t = T_FLOPs / R_FLOPs with T_FLOPs ≈ 120·P² (Eq. 7, 20 tokens per
parameter) and E = t × R_watt, from a per-device rate and an average power measured on a few
steps. The formulas live in :mod:`labutils.throughput`; this module adds the study's measured
figures and the composition for a whole machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.throughput import (LECTURE_002_EFFICIENCY_FLOPS_PER_J, chinchilla_compute_flops,
                                 energy_j, time_from_rate_s)
from labutils.validate import positive, positive_int

S_PER_DAY = 86_400.0
J_PER_MWH = 3.6e9

#: Average GPU power per device (W) while training, lecture 002, Sec. 7.3 "Power" (84 and 408 W
#: for GPT-175B with FSDP, 66 and 151 W for GPT-1T). A public transcript of the paper's text
#: gives "about 85 and 408 Watts" for GPT-175B; we keep the lecture's 84.
MEASURED_POWER_W = {
    ("GPT-175B", "Summit"): 84.0,
    ("GPT-175B", "Crusher"): 408.0,
    ("GPT-1T", "Summit"): 66.0,
    ("GPT-1T", "Crusher"): 151.0,
}
MEASURED_POWER_SOURCE = "lecture 002, Sec. 7.3 (Yin et al. 2023, Sec. 5)"

#: "Traditional simulation workloads (∼ 52 GFLOPS/Watt)", lecture 002, Sec. 7.4.2, in FLOP/J.
SIMULATION_FLOPS_PER_J = 52e9

#: Whole machines. Frontier: "a total of 9,856 AMD compute nodes", each with 4 MI250X (OLCF
#: Frontier User Guide, docs.olcf.ornl.gov/systems/frontier_user_guide.html, read 2026);
#: the paper's 2023 projection may have used the node count of its day.
FRONTIER_GPUS = 9_856 * 4


@dataclass(frozen=True)
class RunProjection:
    """One projected run: compute (FLOPs), wall-clock time (s) and GPU energy (J)."""

    n_params: float
    tokens_per_param: float
    n_devices: int
    device_flops_per_s: float  # sustained, per device
    power_w: float  # average, per device
    compute_flops: float
    time_s: float
    energy_j: float

    @property
    def time_days(self) -> float:
        return self.time_s / S_PER_DAY

    @property
    def energy_mwh(self) -> float:
        return self.energy_j / J_PER_MWH

    @property
    def flops_per_j(self) -> float:
        """Energy efficiency of the run in FLOP/J (= FLOP/s per watt)."""
        return self.compute_flops / self.energy_j


def implied_device_flops_per_s(flops_per_j: float, power_w: float) -> float:
    """Per-device sustained FLOP/s implied by an efficiency (FLOP/J) at an average power (W)."""
    return positive("flops_per_j", flops_per_j) * positive("power_w", power_w)


def efficiency_ratio(flops_per_j: float, reference_flops_per_j: float) -> float:
    """How many times more FLOPs per joule ``flops_per_j`` delivers than the reference."""
    return positive("flops_per_j", flops_per_j) / positive("reference_flops_per_j",
                                                           reference_flops_per_j)


def project_run(n_params: float, tokens_per_param: float, n_devices: int,
                device_flops_per_s: float, power_w: float) -> RunProjection:
    """Lecture 002's projection: C = 6·P·(r·P), t = C / (K·R), E = t·K·P_avg.

    ``tokens_per_param`` is r (20 for Chinchilla-optimal, where C = 120·P²; the lecture's
    "1x data" is r = 1), ``device_flops_per_s`` the sustained rate of one device and
    ``power_w`` its average power; linear scaling to ``n_devices`` is assumed.
    """
    k = positive_int("n_devices", n_devices)
    power = positive("power_w", power_w)
    compute = chinchilla_compute_flops(n_params, tokens_per_param)
    time_s = time_from_rate_s(compute, k * positive("device_flops_per_s", device_flops_per_s))
    return RunProjection(n_params=float(n_params), tokens_per_param=float(tokens_per_param),
                         n_devices=k, device_flops_per_s=float(device_flops_per_s),
                         power_w=power, compute_flops=compute, time_s=time_s,
                         energy_j=energy_j(time_s, k, power))


def crusher_175b_rate() -> tuple[float, float]:
    """(FLOP/s per device, W per device) that Crusher's GPT-175B measurement implies.

    Efficiency 0.235 TFLOP/s per watt at 408 W (lecture 002, Sec. 7.3).
    """
    power = MEASURED_POWER_W[("GPT-175B", "Crusher")]
    eff = LECTURE_002_EFFICIENCY_FLOPS_PER_J["Crusher (MI250X, FSDP)"]
    return implied_device_flops_per_s(eff, power), power
