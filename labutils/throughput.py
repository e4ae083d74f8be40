"""Throughput, MFU/HFU, strong and weak scaling, and time/energy/cost projections.

Chapter 3 ("throughput, MFU and scalability") of the course-book. The formulas follow the lecture
``000_f52c65b7512ce437.txt`` (training throughput, Amdahl and Gustafson speedups, and
MFU = 6·N·T / (F·K)) and ``002_2b6ef2fa7201a799.txt`` (compute ≈ 120·P², t = T_FLOPS / R_FLOPS,
E = t × power). Units: tokens, seconds, FLOPs (floating-point operations), FLOP/s, watts, joules.

Every function validates its inputs and raises ``ValueError``/``TypeError`` naming the argument
and the allowed range. Peak FLOP/s always comes from :mod:`labutils.hardware`, never a literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labutils import hardware
from labutils.flops import training_flops, training_multiplier
from labutils.validate import fraction, non_negative, number, positive, positive_int

S_PER_HOUR = 3600.0
S_PER_DAY = 86_400.0
S_PER_YEAR = 365.25 * S_PER_DAY  # a Julian year
J_PER_KWH = 3.6e6
J_PER_MWH = 3.6e9
PETAFLOP_S_DAY_FLOPS = 1e15 * S_PER_DAY  # one petaFLOP/s sustained for a day = 8.64e19 FLOPs

#: GPU counts of the lecture's scalability example (000_f52c65b7512ce437.txt, "Scalability in
#: Distributed ML Example").
LECTURE_DEVICE_COUNTS = (1, 4, 16, 64, 256)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _at_least_one(name: str, value: object) -> float:
    return number(name, value, low=1.0)  # a number of processors (real-valued in the formulas)


def _at_most_peak(what: str, achieved_flops_per_s: float, peak_flops_per_s: float,
                  inputs: str) -> float:
    """achieved / peak, refusing a result above 1: no device beats its own peak, so the FLOP
    count, the throughput or the peak is wrong (nanoGPT's hard-coded peak once gave 104 %)."""
    ratio = achieved_flops_per_s / peak_flops_per_s
    if ratio > 1.0:
        raise ValueError(
            f"{what} = {ratio:.3g} > 1: the inputs ask for {achieved_flops_per_s:.4g} FLOP/s from "
            f"a cluster whose peak is {peak_flops_per_s:.4g} FLOP/s ({inputs}); check the "
            "parameter count, tokens_per_s, n_devices and peak_flops_per_device")
    return ratio


def _device_counts(device_counts: object) -> tuple[int, ...]:
    if isinstance(device_counts, (str, bytes)) or not isinstance(device_counts, (list, tuple)) \
            or not device_counts:
        raise TypeError(f"device_counts must be a non-empty list or tuple of ints >= 1, "
                        f"got {device_counts!r:.80}")
    return tuple(positive_int(f"device_counts[{i}]", n) for i, n in enumerate(device_counts))


# --------------------------------------------------------------------------------------------
# throughput and utilization
# --------------------------------------------------------------------------------------------
def tokens_per_step(global_batch: int, seq_len: int) -> int:
    """Tokens processed by one optimizer step: global batch (sequences) × sequence length."""
    return positive_int("global_batch", global_batch) * positive_int("seq_len", seq_len)


def tokens_per_second(global_batch: int, seq_len: int, step_time_s: float) -> float:
    """Cluster training throughput in tokens/s.

    Lecture 000 ("Training Throughput"): one step (forward, backward and update) over
    ``global_batch`` sequences of ``seq_len`` tokens takes ``step_time_s`` seconds, so
    T = global_batch · seq_len / step_time_s.
    """
    return tokens_per_step(global_batch, seq_len) / positive("step_time_s", step_time_s)


def tokens_per_second_per_device(tokens_per_s: float, n_devices: int) -> float:
    """Throughput per device (tokens/s/GPU): the cluster's tokens/s divided by ``n_devices``."""
    return positive("tokens_per_s", tokens_per_s) / positive_int("n_devices", n_devices)


def model_flops_per_token(n_params: float, *, attention_flops_per_token: float = 0.0) -> float:
    """Model FLOPs for one training token: 6·N (forward 2N + backward 4N) plus an attention term.

    ``attention_flops_per_token`` is the training (forward + backward) cost of the attention
    score and value matmuls per token, which 6·N leaves out; e.g. PaLM's 12·L·H·Q·T
    (:func:`labutils.flops.attention_flops_per_token`). Recomputation is *not* counted: that is
    HFU.
    """
    positive("n_params", n_params)
    attn = non_negative("attention_flops_per_token", attention_flops_per_token)
    return training_flops(n_params, 1) + attn  # lecture 000: C ≈ 6·N·D, here with D = 1 token


def mfu(
    n_params: float,
    tokens_per_s: float,
    n_devices: int,
    peak_flops_per_device: float,
    *,
    attention_flops_per_token: float = 0.0,
) -> float:
    """Model FLOPs Utilization as a fraction (0.35 means 35 %), not a percent.

    Lecture 000 ("Model FLOPs Utilization"): ε = 6·N·T / (F·K), with N parameters, T cluster
    throughput (tokens/s), F peak FLOP/s of one device and K devices. With
    ``attention_flops_per_token`` the numerator becomes (6·N + attention)·T, as in PaLM App. B.
    A value above 1 is impossible (no device beats its peak): it means the FLOP count, the
    throughput or the peak is wrong, and raises ValueError naming the inputs.
    """
    flops_per_token = model_flops_per_token(
        n_params, attention_flops_per_token=attention_flops_per_token
    )
    achieved_flops_per_s = flops_per_token * positive("tokens_per_s", tokens_per_s)
    peak = positive_int("n_devices", n_devices) * positive(
        "peak_flops_per_device", peak_flops_per_device
    )
    inputs = (f"n_params={n_params:g}, tokens_per_s={tokens_per_s:g}, n_devices={n_devices}, "
              f"peak_flops_per_device={peak_flops_per_device:g}")
    return _at_most_peak("MFU", achieved_flops_per_s, peak, inputs)


def hardware_flops_per_token(
    n_params: float,
    *,
    attention_flops_per_token: float = 0.0,
    recompute_fraction: float = 1.0,
) -> float:
    """FLOPs the hardware executes per training token, counting activation recomputation.

    Recomputation reruns (part of) the forward pass during backward. With
    ``recompute_fraction`` = r of the forward recomputed, the hardware does
    6·N + A + r·(2·N + A/3), where A is the training attention term (its forward is A/3).
    Full recomputation (r = 1) gives 8·N: the "4 passes instead of 3" of Narayanan et al. 2021,
    Eq. (3); r = 0 gives the model FLOPs.
    """
    model = model_flops_per_token(n_params, attention_flops_per_token=attention_flops_per_token)
    r = fraction("recompute_fraction", recompute_fraction)
    forward_flops = model / training_multiplier()  # forward = 2N + A/3: a third of fwd + bwd
    return model + r * forward_flops


def hfu(
    n_params: float,
    tokens_per_s: float,
    n_devices: int,
    peak_flops_per_device: float,
    *,
    attention_flops_per_token: float = 0.0,
    recompute_fraction: float = 1.0,
) -> float:
    """Hardware FLOPs Utilization (a fraction): like :func:`mfu` but counting recomputed FLOPs.

    PaLM (Chowdhery et al. 2022, Sec. 4.1) introduced the MFU/HFU distinction: HFU depends on the
    implementation (how much is recomputed), MFU only on the model and the throughput, so MFU is
    the fair number for comparing systems. HFU ≥ MFU, with equality when nothing is recomputed.
    Like MFU it cannot exceed 1: a larger value raises ValueError naming the inputs.
    """
    flops_per_token = hardware_flops_per_token(
        n_params,
        attention_flops_per_token=attention_flops_per_token,
        recompute_fraction=recompute_fraction,
    )
    peak = positive_int("n_devices", n_devices) * positive(
        "peak_flops_per_device", peak_flops_per_device
    )
    achieved_flops_per_s = flops_per_token * positive("tokens_per_s", tokens_per_s)
    inputs = (f"n_params={n_params:g}, tokens_per_s={tokens_per_s:g}, n_devices={n_devices}, "
              f"peak_flops_per_device={peak_flops_per_device:g}, "
              f"recompute_fraction={recompute_fraction:g}")
    return _at_most_peak("HFU", achieved_flops_per_s, peak, inputs)


def implied_recompute_fraction(
    n_params: float,
    tokens_per_s: float,
    n_devices: int,
    peak_flops_per_device: float,
    hfu_fraction: float,
    *,
    attention_flops_per_token: float = 0.0,
) -> float:
    """The share r of the forward pass that must have been recomputed to turn MFU into a given HFU.

    Inverts :func:`hfu`: r = (HFU·K·F/T − (6N + A)) / (2N + A/3). A result outside [0, 1] means
    the reported HFU counts something other than recomputed forward passes.
    """
    h = number("hfu_fraction", hfu_fraction, low=0.0, high=1.0, low_open=True)
    model = model_flops_per_token(n_params, attention_flops_per_token=attention_flops_per_token)
    peak = positive_int("n_devices", n_devices) * positive(
        "peak_flops_per_device", peak_flops_per_device
    )
    hardware_per_token = h * peak / positive("tokens_per_s", tokens_per_s)
    forward_flops = model / training_multiplier()  # (2N + A/3) = (6N + A)/3
    return (hardware_per_token - model) / forward_flops


def utilization(achieved_flops_per_s: float, peak_flops_per_s: float) -> float:
    """Achieved FLOP/s over peak FLOP/s (a fraction): MFU or HFU depending on what was counted.

    Unlike :func:`mfu` this does not refuse values above 1: against a *measured* peak (a CPU's
    best timed matmul, :mod:`labutils.measure`) a later step on a quieter machine can beat it.
    """
    return positive("achieved_flops_per_s", achieved_flops_per_s) / positive(
        "peak_flops_per_s", peak_flops_per_s
    )


def training_time_s(n_tokens: float, tokens_per_s: float) -> float:
    """Seconds to process ``n_tokens`` at ``tokens_per_s``: lecture 000, t = D / T."""
    return positive("n_tokens", n_tokens) / positive("tokens_per_s", tokens_per_s)


def megatron_flops_per_token(
    n_layers: int, d_model: int, seq_len: int, vocab_size: int, *, recompute: bool = True
) -> float:
    """FLOPs per token that Megatron-LM counts for a GPT model (Narayanan et al. 2021, Eq. (3)).

    Per iteration of B sequences they count F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) with full
    activation recomputation (forward ×2, backward ×2 on the transformer layers; the logit layer
    is not recomputed). Without recomputation the same accounting gives
    72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)). Divided here by the B·s tokens of the iteration.
    """
    l_ = positive_int("n_layers", n_layers)
    h = positive_int("d_model", d_model)
    s = positive_int("seq_len", seq_len)
    v = positive_int("vocab_size", vocab_size)
    if not isinstance(recompute, bool):
        raise TypeError(f"recompute must be a bool, got {recompute!r}")
    if recompute:
        return 96.0 * l_ * h**2 * (1 + s / (6 * h) + v / (16 * l_ * h))  # Narayanan 2021, Eq. (3)
    return 72.0 * l_ * h**2 * (1 + s / (6 * h) + v / (12 * l_ * h))


# --------------------------------------------------------------------------------------------
# scalability (lecture 000, "Strong Scalability" / "Weak Scalability")
# --------------------------------------------------------------------------------------------
def speedup(time_one_device_s: float, time_n_devices_s: float) -> float:
    """Measured speedup t_1 / t_N (lecture 000, "Scalability")."""
    return positive("time_one_device_s", time_one_device_s) / positive(
        "time_n_devices_s", time_n_devices_s
    )


def amdahl_speedup(serial_fraction: float, n: float) -> float:
    """Strong-scaling (Amdahl) speedup 1 / (s + p/N) with p = 1 − s, for a fixed problem.

    ``serial_fraction`` s in [0, 1] is the share of one-processor time that cannot be
    parallelised; ``n`` >= 1 processors. The speedup is at most ``n`` and at most 1/s.
    """
    s = fraction("serial_fraction", serial_fraction)
    n_ = _at_least_one("n", n)
    return 1.0 / (s + (1.0 - s) / n_)


def gustafson_speedup(serial_fraction: float, n: float) -> float:
    """Weak-scaling (Gustafson) speedup s + p·N with p = 1 − s, for a problem grown with N.

    Here s is the serial share of the time measured on the N-processor run. The speedup is at
    least 1 and at most ``n``.
    """
    s = fraction("serial_fraction", serial_fraction)
    n_ = _at_least_one("n", n)
    return s + (1.0 - s) * n_


def parallel_efficiency(speedup_value: float, n: float) -> float:
    """Speedup per processor, speedup / N (1.0 is linear scaling)."""
    return positive("speedup_value", speedup_value) / _at_least_one("n", n)


def max_serial_fraction(target_speedup: float, n: float) -> float:
    """The largest serial fraction that still allows ``target_speedup`` on ``n`` processors.

    Solving 1 / (s + (1 − s)/N) = S for s gives s = (N/S − 1) / (N − 1). Lecture 000: a 500×
    speedup on 1000 processors needs s ≤ 1/999 ≈ 0.1 %.
    """
    n_ = _at_least_one("n", n)
    if n_ <= 1:
        raise ValueError(f"n must be > 1 for a serial-fraction bound, got {n!r}")
    target = number("target_speedup", target_speedup)
    if not 1.0 <= target <= n_:
        raise ValueError(f"target_speedup must be in [1, n={n_:g}], got {target_speedup!r}")
    return (n_ / target - 1.0) / (n_ - 1.0)


@dataclass(frozen=True)
class ScalingRow:
    """One column of the lecture's scalability tables (sequences per step, not tokens)."""

    n_devices: int
    per_device_batch: int
    global_batch: int


def strong_scaling_table(global_batch: int, device_counts: Sequence[int] = LECTURE_DEVICE_COUNTS) -> list[ScalingRow]:
    """Strong scaling: the global batch is fixed, so each device gets global_batch / N.

    Lecture 000 ("Scalability in Distributed ML Example"): global batch 2048 on 1..256 GPUs gives
    2048, 512, 128, 32, 8 sequences per GPU. Raises if a count does not divide the batch.
    """
    gb = positive_int("global_batch", global_batch)
    rows = []
    for n in _device_counts(device_counts):
        if gb % n:
            raise ValueError(f"global_batch={gb} is not divisible by n_devices={n}")
        rows.append(ScalingRow(n, gb // n, gb))
    return rows


def weak_scaling_table(per_device_batch: int, device_counts: Sequence[int] = LECTURE_DEVICE_COUNTS) -> list[ScalingRow]:
    """Weak scaling: the per-device batch is fixed, so the global batch grows as N × batch.

    Lecture 000: 32 sequences per GPU on 1..256 GPUs gives global batches 32 ... 8192.
    """
    b = positive_int("per_device_batch", per_device_batch)
    return [ScalingRow(n, b, n * b) for n in _device_counts(device_counts)]


# --------------------------------------------------------------------------------------------
# time, energy and cost projections (lecture 002, "Runtime and Energy Analysis")
# --------------------------------------------------------------------------------------------
#: Chinchilla's compute-optimal ratio, about 20 training tokens per parameter (Hoffmann et al.
#: 2022, Table 3: 20.2B tokens for 1B parameters ... 21.2T for 1T; lecture 002, Eq. (7)).
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def chinchilla_tokens(n_params: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> float:
    """Compute-optimal training tokens for ``n_params`` parameters: D = r·P (r = 20 by default)."""
    return positive("tokens_per_param", tokens_per_param) * positive("n_params", n_params)


def chinchilla_compute_flops(n_params: float,
                             tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> float:
    """Training compute at a fixed tokens-per-parameter ratio: 6·P·(r·P); with r = 20, 120·P².

    Lecture 002, Eq. (7): compute ∼ 120 × P² for compute-optimal (20 tokens/parameter) training.
    """
    return training_flops(n_params, chinchilla_tokens(n_params, tokens_per_param))


def time_from_rate_s(compute_flops: float, flops_per_s: float) -> float:
    """Seconds to execute ``compute_flops`` at a sustained ``flops_per_s``: lecture 002, t = T/R."""
    return positive("compute_flops", compute_flops) / positive("flops_per_s", flops_per_s)


def projected_time_s(
    compute_flops: float, n_devices: int, peak_flops_per_device: float, mfu_fraction: float
) -> float:
    """Training time t = C / (K · F · MFU) in seconds (the lecture's MFU formula solved for t)."""
    m = number("mfu_fraction", mfu_fraction, low=0.0, high=1.0, low_open=True)
    rate = positive_int("n_devices", n_devices) * positive(
        "peak_flops_per_device", peak_flops_per_device
    )
    return time_from_rate_s(compute_flops, rate * m)


def energy_j(time_s: float, n_devices: int, avg_power_w: float) -> float:
    """Energy in joules, E = t · K · P_avg (lecture 002: E = t × R_watt, per device here)."""
    return (
        positive("time_s", time_s)
        * positive_int("n_devices", n_devices)
        * positive("avg_power_w", avg_power_w)
    )


def energy_from_efficiency_j(compute_flops: float, flops_per_joule: float) -> float:
    """Energy to run ``compute_flops`` at an efficiency in FLOP/J (= FLOP/s per watt).

    Lecture 002 quotes efficiencies in TFLOP/s per watt (e.g. 0.235 on Crusher for GPT-175B).
    """
    return positive("compute_flops", compute_flops) / positive("flops_per_joule", flops_per_joule)


#: Measured energy efficiency of GPT-175B training in FLOP/J (= FLOP/s per watt), as the notes on
#: "Evaluation of Pre-training LLMs on Supercomputers" quote it (lecture 002_2b6ef2fa7201a799.txt,
#: Sec. 7.3 "Power": 0.165 TFLOPS/W on Summit, 0.235 TFLOPS/W on Crusher).
LECTURE_002_EFFICIENCY_FLOPS_PER_J = {
    "Summit (V100, DeepSpeed-Megatron)": 0.165e12,
    "Crusher (MI250X, FSDP)": 0.235e12,
}


def petaflop_s_days(compute_flops: float) -> float:
    """Compute in petaflop/s-days (1 PF/s-day = 1e15 · 86 400 = 8.64e19 FLOPs; GPT-3 paper unit)."""
    return positive("compute_flops", compute_flops) / PETAFLOP_S_DAY_FLOPS


def cost_usd(time_s: float, n_devices: int, usd_per_device_hour: float) -> float:
    """Rental cost: device-hours × price. ``usd_per_device_hour`` is the reader's choice (>= 0)."""
    hours = positive("time_s", time_s) / S_PER_HOUR
    return hours * positive_int("n_devices", n_devices) * non_negative(
        "usd_per_device_hour", usd_per_device_hour
    )


@dataclass(frozen=True)
class TrainingProjection:
    """Time, energy and cost of one training run (see :func:`project_training`)."""

    compute_flops: float  # 6·N·D (+ attention)
    petaflop_s_days: float
    time_s: float
    energy_j: float
    cost_usd: float
    peak_flops_per_device: float  # from labutils.hardware
    avg_power_w: float  # per device
    n_devices: int

    @property
    def time_days(self) -> float:
        return self.time_s / S_PER_DAY

    @property
    def device_hours(self) -> float:
        return self.time_s / S_PER_HOUR * self.n_devices

    @property
    def energy_mwh(self) -> float:
        return self.energy_j / J_PER_MWH


def project_training(
    n_params: float,
    n_tokens: float,
    n_devices: int,
    accelerator: str,
    mfu_fraction: float,
    *,
    dtype: str = "bf16",
    avg_power_w: float | None = None,
    usd_per_device_hour: float = 2.0,
    attention_flops_per_token: float = 0.0,
) -> TrainingProjection:
    """Project a run: C = (6N + attention)·D, t = C/(K·F·MFU), E = t·K·P_avg, cost = K·t·price.

    ``accelerator`` names a :mod:`labutils.hardware` spec (its dense ``dtype`` peak is F);
    ``avg_power_w`` defaults to the device's TDP, an upper bound on the average board power
    (it leaves out CPUs, network and cooling, i.e. a PUE of 1).
    """
    if not isinstance(accelerator, str):
        raise TypeError(f"accelerator must be a str naming a labutils.hardware spec, got {accelerator!r}")
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be a str such as 'bf16', got {dtype!r}")
    spec = hardware.get(accelerator)
    peak = spec.peak_flops(dtype)
    power = spec.tdp_watts if avg_power_w is None else positive("avg_power_w", avg_power_w)
    d = positive("n_tokens", n_tokens)
    compute = model_flops_per_token(n_params, attention_flops_per_token=attention_flops_per_token) * d
    t = projected_time_s(compute, n_devices, peak, mfu_fraction)
    return TrainingProjection(
        compute_flops=compute,
        petaflop_s_days=petaflop_s_days(compute),
        time_s=t,
        energy_j=energy_j(t, n_devices, power),
        cost_usd=cost_usd(t, n_devices, usd_per_device_hour),
        peak_flops_per_device=peak,
        avg_power_w=power,
        n_devices=n_devices,
    )
