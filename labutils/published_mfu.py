"""Published MFU figures from real training runs, with their inputs, recomputed from those inputs.

Chapter 3 ("throughput, MFU and scalability") shows these next to the lecture's worked example.
Each :class:`PublishedRun` holds what a paper states (throughput or achieved FLOP/s per device,
device count and type, model size) and what it reports (MFU, % of peak, training time). Its
:meth:`PublishedRun.checks` recompute every reported figure with :mod:`labutils.throughput` and
give the tolerance the rounding of the published inputs allows; ``tests/test_throughput.py``
asserts them all. Peaks come from :mod:`labutils.hardware`.

Where a recomputation differs from the headline, the ``note`` says why (attention accounting,
recomputation counted as useful work, rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils import hardware
from labutils.validate import non_negative, number, positive, positive_int
from labutils.flops import attention_flops_per_token
from labutils.model import TransformerConfig
from labutils.throughput import (
    S_PER_DAY,
    S_PER_HOUR,
    hardware_flops_per_token,
    implied_recompute_fraction,
    megatron_flops_per_token,
    mfu,
    model_flops_per_token,
    time_from_rate_s,
    training_time_s,
    utilization,
)


@dataclass(frozen=True)
class Check:
    """One reported number next to our recomputation of it from the published inputs."""

    quantity: str  # e.g. "MFU", "% of peak (HFU)", "training days"
    reported: float  # as published (fractions for utilizations)
    recomputed: float  # from the inputs with labutils.throughput
    tolerance: float  # absolute, in the unit of ``reported``
    why: str  # why this tolerance: the rounding of the inputs and of the reported figure

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, str) or not isinstance(self.why, str):
            raise TypeError(f"quantity and why must be str, got {self.quantity!r}, {self.why!r}")
        number("reported", self.reported)
        number("recomputed", self.recomputed)
        non_negative("tolerance", self.tolerance)

    @property
    def difference(self) -> float:
        return self.recomputed - self.reported

    @property
    def ok(self) -> bool:
        return abs(self.difference) <= self.tolerance


def _attention_training_flops_per_token(n_layers: int, n_heads: int, head_dim: int, seq_len: int) -> float:
    """Full-score attention FLOPs per training token, PaLM's 12·L·H·Q·T (App. B).

    Only the attention shape matters (L layers, H heads of size Q, context T), so it is built as
    a config whose width is the attention width H·Q (PaLM's 12288, not its d_model 18432) and
    whose vocabulary is a placeholder.
    """
    for name, x in (("n_layers", n_layers), ("n_heads", n_heads), ("head_dim", head_dim),
                    ("seq_len", seq_len)):
        positive_int(name, x)
    shape = TransformerConfig(vocab_size=1, seq_len=seq_len, d_model=n_heads * head_dim,
                              n_layers=n_layers, n_heads=n_heads, name="attention shape")
    return attention_flops_per_token(shape, training=True)


@dataclass(frozen=True)
class PublishedRun:
    """A training run as a paper reports it.

    Give ``tokens_per_s`` (cluster tokens/s) when the paper states throughput, or
    ``achieved_flops_per_device`` (FLOP/s per device) when it states that instead; in the
    latter case ``counts_recomputation`` says whether the paper's FLOP count includes recomputed
    forward passes (then its "% of peak" is an HFU, not an MFU).
    """

    name: str
    n_params: float  # parameters
    n_devices: int
    accelerator: str  # a labutils.hardware name
    source: str  # paper + table/section
    dtype: str = "bf16"
    tokens_per_s: float | None = None  # cluster training throughput, tokens/s
    achieved_flops_per_device: float | None = None  # FLOP/s per device, as the paper counts them
    counts_recomputation: bool = False
    attention_flops_per_token: float = 0.0  # training attention FLOPs per token the paper counts
    megatron_shape: tuple[int, int, int, int] | None = None  # (layers, hidden, seq_len, vocab)
    reported_mfu: float | None = None  # fraction
    reported_hfu: float | None = None  # fraction ("% of peak" when recomputation is counted)
    n_tokens: float | None = None  # training tokens, when a training time is reported
    reported_days: float | None = None
    reported_device_hours: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.tokens_per_s is None) == (self.achieved_flops_per_device is None):
            raise ValueError(f"{self.name}: give exactly one of tokens_per_s and achieved_flops_per_device")
        hardware.get(self.accelerator).peak_flops(self.dtype)  # raises on an unknown name or dtype
        positive("n_params", self.n_params)
        positive_int("n_devices", self.n_devices)
        non_negative("attention_flops_per_token", self.attention_flops_per_token)
        for name in ("tokens_per_s", "achieved_flops_per_device", "n_tokens", "reported_days",
                     "reported_device_hours"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        for name in ("reported_mfu", "reported_hfu"):
            if getattr(self, name) is not None:
                number(name, getattr(self, name), low=0.0, high=1.0, low_open=True)
        if self.megatron_shape is not None:
            if not isinstance(self.megatron_shape, tuple) or len(self.megatron_shape) != 4:
                raise TypeError(f"megatron_shape must be a (layers, hidden, seq_len, vocab) tuple, "
                                f"got {self.megatron_shape!r}")
            for name, x in zip(("layers", "hidden", "seq_len", "vocab"), self.megatron_shape):
                positive_int(f"megatron_shape {name}", x)
        if not isinstance(self.counts_recomputation, bool):
            raise TypeError(f"counts_recomputation must be a bool, got {self.counts_recomputation!r}")

    @property
    def peak_flops_per_device(self) -> float:
        """Dense peak FLOP/s of one device, from :mod:`labutils.hardware`."""
        return hardware.get(self.accelerator).peak_flops(self.dtype)

    @property
    def cluster_tokens_per_s(self) -> float:
        """Tokens/s of the whole cluster: published, or derived from achieved FLOP/s."""
        if self.tokens_per_s is not None:
            return self.tokens_per_s
        if self.megatron_shape is not None:
            per_token = megatron_flops_per_token(*self.megatron_shape, recompute=self.counts_recomputation)
        elif self.counts_recomputation:
            per_token = hardware_flops_per_token(
                self.n_params, attention_flops_per_token=self.attention_flops_per_token
            )
        else:
            per_token = model_flops_per_token(
                self.n_params, attention_flops_per_token=self.attention_flops_per_token
            )
        return self.achieved_flops_per_device * self.n_devices / per_token

    def recomputed_mfu(self, *, attention: bool = True) -> float:
        """MFU from the inputs: (6N [+ attention])·T / (K·F). For a Megatron run, the paper's
        own FLOP formula without the recomputation term (:func:`megatron_flops_per_token`)."""
        if self.megatron_shape is not None and attention:
            per_token = megatron_flops_per_token(*self.megatron_shape, recompute=False)
            return utilization(per_token * self.cluster_tokens_per_s / self.n_devices,
                               self.peak_flops_per_device)
        if self.achieved_flops_per_device is not None and not self.counts_recomputation and attention:
            return utilization(self.achieved_flops_per_device, self.peak_flops_per_device)
        return mfu(
            self.n_params, self.cluster_tokens_per_s, self.n_devices, self.peak_flops_per_device,
            attention_flops_per_token=self.attention_flops_per_token if attention else 0.0,
        )

    def implied_recompute_fraction(self) -> float | None:
        """For a run that reports both MFU and HFU from a throughput: the share of the forward
        pass its HFU implies was recomputed (PaLM: about 0.75). None otherwise."""
        if self.reported_hfu is None or self.tokens_per_s is None:
            return None
        return implied_recompute_fraction(
            self.n_params, self.tokens_per_s, self.n_devices, self.peak_flops_per_device,
            self.reported_hfu, attention_flops_per_token=self.attention_flops_per_token,
        )

    def checks(self) -> list[Check]:
        """Every reported figure of this run, recomputed (see :class:`Check`)."""
        out: list[Check] = []
        if self.reported_mfu is not None:
            why = ("reported to 0.1 pt; throughput given to 4 significant figures"
                   if self.tokens_per_s is not None else
                   "reported to 1 pt and FLOP/s per device rounded to 10 TFLOP/s (±0.5 pt each)")
            tol = 0.001 if self.tokens_per_s is not None else 0.01
            out.append(Check("MFU", self.reported_mfu, self.recomputed_mfu(), tol, why))
        if self.reported_hfu is not None and self.achieved_flops_per_device is not None:
            out.append(Check(
                "% of peak (HFU)", self.reported_hfu,
                utilization(self.achieved_flops_per_device, self.peak_flops_per_device), 0.007,
                "reported to 1 pt (±0.5 pt); TFLOP/s per GPU to 3 significant figures (±0.16 pt)",
            ))
        if self.n_tokens is not None and self.reported_days is not None:
            days = training_time_s(self.n_tokens, self.cluster_tokens_per_s) / S_PER_DAY
            out.append(Check("training days", self.reported_days, days, 0.5,
                             "the paper says 'approximately' a whole number of days"))
        if self.n_tokens is not None and self.reported_device_hours is not None:
            hours = training_time_s(self.n_tokens, self.cluster_tokens_per_s) / S_PER_HOUR * self.n_devices
            out.append(Check("GPU-hours", self.reported_device_hours, hours,
                             0.002 * self.reported_device_hours,
                             "380 tokens/s/GPU is 'around' (3 significant figures, ±0.13 %)"))
        return out


# PaLM, App. B: 540.35B parameters, L = 118 layers, H = 48 heads, Q = 256 (H·Q = 12288; d_model is
# 18432), T = 2048.
PALM_540B = PublishedRun(
    name="PaLM 540B",
    n_params=540.35e9,
    n_devices=6144,
    accelerator="TPU-v4",
    tokens_per_s=238.3e3,
    attention_flops_per_token=_attention_training_flops_per_token(118, 48, 256, 2048),
    reported_mfu=0.462,
    reported_hfu=0.578,
    source="Chowdhery et al. 2022 (PaLM), Sec. 4.1 Table 3 and App. B",
    note=("MFU counts 6N + 12·L·H·Q·T per token (attention included: 45.7 % without it). HFU "
          "57.8 % also counts rematerialization; PaLM does not say how much it recomputed, so "
          "HFU cannot be recomputed from the paper's inputs alone."),
)

# Narayanan et al. 2021, Table 1 (weak-scaling runs on Selene, 8 × A100-80GB per node; V = 51200,
# s = 2048). Rows: params (B), heads, hidden, layers, TP, PP, GPUs, batch, TFLOP/s per GPU, % of peak,
# aggregate PFLOP/s. 1T: 1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163, 52 %, 502.0.
# 145.6B: 145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148, 47 %, 227.1. The FLOPs are counted with
# Eq. (3), F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)), in Sec. 5.1.
MEGATRON_1T = PublishedRun(
    name="Megatron-LM 1T",
    n_params=1008.0e9,
    n_devices=3072,
    accelerator="A100-80GB",
    achieved_flops_per_device=163e12,
    counts_recomputation=True,
    megatron_shape=(128, 25600, 2048, 51200),
    reported_hfu=0.52,
    source="Narayanan et al. 2021 (Megatron-LM), Sec. 5.1: Table 1 and Eq. (3)",
    note=("'% of theoretical peak' counts FLOPs with full activation recomputation (96·B·s·l·h² "
          "instead of 72), so it is an HFU; the MFU is about 3/4 of it."),
)

MEGATRON_146B = PublishedRun(
    name="Megatron-LM 145.6B",
    n_params=145.6e9,
    n_devices=1536,
    accelerator="A100-80GB",
    achieved_flops_per_device=148e12,
    counts_recomputation=True,
    megatron_shape=(80, 12288, 2048, 51200),
    reported_hfu=0.47,
    source="Narayanan et al. 2021 (Megatron-LM), Sec. 5.1: Table 1 and Eq. (3)",
    note="As for the 1T row: recomputation counted, so '% of peak' is an HFU.",
)

LLAMA_65B = PublishedRun(
    name="LLaMA 65B",
    n_params=65.2e9,
    n_devices=2048,
    accelerator="A100-80GB",
    tokens_per_s=380.0 * 2048,
    attention_flops_per_token=_attention_training_flops_per_token(80, 64, 128, 2048),
    n_tokens=1.4e12,
    reported_days=21.0,
    reported_device_hours=1_022_362.0,
    source=("Touvron et al. 2023 (LLaMA), Sec. 2.4 (380 tokens/s/GPU on 2048 A100-80GB, 1.4T "
            "tokens in about 21 days) and Table 15 (GPU-hours)"),
    note=("No MFU is published; from the throughput it is 47.6 % (6N) or 49.6 % with attention. "
          "LLaMA also saves some activations instead of recomputing them, so its HFU is higher."),
)

# Dubey et al. 2024, Sec. 3.3.2 ("GPU utilization"), Table 4, columns GPUs | TP | CP | PP | DP |
# Seq. Len. | Batch size/DP | Tokens/Batch | TFLOPs/GPU | BF16 MFU (values as in arXiv v3).
_LLAMA3_SRC = "Dubey et al. 2024 (Llama 3), Sec. 3.3.2, Table 4"
LLAMA3_405B_8K = PublishedRun(
    name="Llama 3 405B, 8,192 GPUs",
    n_params=405e9, n_devices=8192, accelerator="H100-SXM",
    achieved_flops_per_device=430e12, reported_mfu=0.43, source=_LLAMA3_SRC,
    note="TP 8, CP 1, PP 16, DP 64; seq. 8,192; 32 sequences per DP group; 16M tokens per batch.",
)
LLAMA3_405B_16K = PublishedRun(
    name="Llama 3 405B, 16,384 GPUs",
    n_params=405e9, n_devices=16384, accelerator="H100-SXM",
    achieved_flops_per_device=400e12, reported_mfu=0.41, source=_LLAMA3_SRC,
    note=("TP 8, CP 1, PP 16, DP 128; seq. 8,192; 16 sequences per DP group; 16M tokens per batch. "
          "400/989.4 is 40.4 %; the printed 41 % fits a TFLOP/s figure rounded from up to 405."),
)
LLAMA3_405B_16K_LONG = PublishedRun(
    name="Llama 3 405B, 16,384 GPUs, 131k context",
    n_params=405e9, n_devices=16384, accelerator="H100-SXM",
    achieved_flops_per_device=380e12, reported_mfu=0.38, source=_LLAMA3_SRC,
    note=("TP 8, CP 16, PP 16, DP 8; seq. 131,072; 16 sequences per DP group; 16M tokens per batch. "
          "Earlier versions of the paper (arXiv v1, PDF and HTML) print DP 4, which contradicts "
          "the row (8·16·16·4 = 8,192 GPUs and 8M tokens); arXiv v3 prints DP 8, which fits."),
)

PUBLISHED_RUNS: tuple[PublishedRun, ...] = (
    PALM_540B, MEGATRON_146B, MEGATRON_1T, LLAMA_65B,
    LLAMA3_405B_8K, LLAMA3_405B_16K, LLAMA3_405B_16K_LONG,
)


@dataclass(frozen=True)
class PublishedTimeEstimate:
    """A training-time estimate a paper derives from a sustained FLOP/s per device.

    Narayanan et al. 2021, Sec. 5.1, Eq. (4): t ≈ 8·T·P / (n·X), with T tokens, P parameters,
    n GPUs at X FLOP/s each; the 8 is 6 plus 2 for full recomputation
    (:func:`labutils.throughput.hardware_flops_per_token` with ``recompute_fraction=1``).
    """

    name: str
    n_params: float
    n_tokens: float
    n_devices: int
    achieved_flops_per_device: float
    reported_days: float
    source: str

    def __post_init__(self) -> None:
        for name in ("n_params", "n_tokens", "achieved_flops_per_device", "reported_days"):
            positive(name, getattr(self, name))
        positive_int("n_devices", self.n_devices)

    def recomputed_days(self) -> float:
        compute = hardware_flops_per_token(self.n_params, recompute_fraction=1.0) * self.n_tokens
        return time_from_rate_s(compute, self.n_devices * self.achieved_flops_per_device) / S_PER_DAY

    def check(self) -> Check:
        return Check("training days", self.reported_days, self.recomputed_days(), 0.5,
                     "the paper quotes whole days")


PUBLISHED_TIME_ESTIMATES: tuple[PublishedTimeEstimate, ...] = (
    PublishedTimeEstimate("GPT-3 175B on 1024 A100s", 175e9, 300e9, 1024, 140e12, 34.0,
                          "Narayanan et al. 2021 (Megatron-LM), Sec. 5.1, Eq. (4)"),
    PublishedTimeEstimate("1T model on 3072 A100s", 1008e9, 450e9, 3072, 163e12, 84.0,
                          "Narayanan et al. 2021 (Megatron-LM), Sec. 5.1, Eq. (4)"),
)


@dataclass(frozen=True)
class RecomputationComparison:
    """The same model and cluster trained with full and with selective activation recomputation.

    Model FLOPs per token do not change, so the ratio of the two MFUs is the speedup; and full
    recomputation's HFU, MFU × 8/6 (:func:`labutils.throughput.hardware_flops_per_token`), shows
    how busy the hardware was while making less progress.
    """

    name: str
    mfu_full: float  # fraction, with full recomputation
    mfu_selective: float  # fraction, with selective recomputation + sequence parallelism
    reported_speedup: float  # "x % faster", as a fraction
    source: str

    def __post_init__(self) -> None:
        for name in ("mfu_full", "mfu_selective"):
            number(name, getattr(self, name), low=0.0, high=1.0, low_open=True)
        number("reported_speedup", self.reported_speedup, low=-1.0, low_open=True)

    def hfu_full(self) -> float:
        """HFU of the full-recomputation run: MFU × hardware / model FLOPs per token (8N / 6N)."""
        ratio = hardware_flops_per_token(1.0, recompute_fraction=1.0) / model_flops_per_token(1.0)
        return self.mfu_full * ratio

    def check(self) -> Check:
        return Check("speedup", self.reported_speedup, self.mfu_selective / self.mfu_full - 1.0, 0.005,
                     "the abstract rounds the speedup to whole percent")


KORTHIKANTI_530B = RecomputationComparison(
    name="GPT 530B on 2240 A100s", mfu_full=0.421, mfu_selective=0.542, reported_speedup=0.29,
    source="Korthikanti et al. 2022, abstract (54.2 % MFU, 29 % faster than the 42.1 % with full recomputation)",
)
