"""Measure throughput and MFU live: achievable matmul FLOP/s, then timed training steps of the GPT.

Chapter 3 ("throughput, MFU and scalability") runs these on the reader's machine.

* On a GPU, the peak is the datasheet's dense bf16 peak from :mod:`labutils.hardware`, and the
  steps run under bf16 autocast.
* On a CPU there is no datasheet peak in :mod:`labutils.hardware`, so we **measure** one: the best
  FLOP/s that a large fp32 ``torch.mm`` reaches on the threads torch uses (fastest timed block). An MFU against it says
  how close the model step gets to the machine's own best matmul; it is labelled "measured".

Timing: warm-up steps first (allocator, caches, lazy init), then the median of repeated steps
(the median resists a noisy, shared machine better than the mean). Numbers depend on load.
FLOPs per token come from :func:`labutils.flops.flops_per_token` (exact matmul FLOPs of the
reference GPT, attention included).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch.utils import benchmark

from labutils.validate import integer, number, positive, positive_int
from labutils import hardware
from labutils.flops import flops_per_token
from labutils.model import TransformerConfig, count_params
from labutils.throughput import tokens_per_second, utilization


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[int]:
    """Run a block with ``torch.set_num_threads(num_threads)`` (None: leave it), then restore it.

    Yields the thread count in effect. On a busy machine, fewer threads than cores gives far
    steadier timings: OpenMP threads of one op wait for each other at every barrier, so when
    another process holds one of the cores a 5 ms step can take seconds.
    """
    before = torch.get_num_threads()
    if num_threads is not None:
        positive_int("num_threads", num_threads)
        torch.set_num_threads(num_threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


AUTOCAST_MODES = ("bf16", "none")


@dataclass(frozen=True)
class PeakFlops:
    """A peak FLOP/s to compute MFU against, and where it came from."""

    flops_per_s: float
    label: str  # "measured" (a timed matmul) or "datasheet"
    description: str  # e.g. "fp32 torch.mm 1024×1024 on 2 threads" or "H100-SXM bf16 dense"

    def __post_init__(self) -> None:
        positive("flops_per_s", self.flops_per_s)
        if self.label not in ("measured", "datasheet"):
            raise ValueError(f"label must be 'measured' or 'datasheet', got {self.label!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"description must be a string, got {type(self.description).__name__}")


def gpu_spec_name(device_name: str) -> str:
    """The :mod:`labutils.hardware` name for an exact CUDA device name such as
    "NVIDIA H100 80GB HBM3" (see :func:`labutils.hardware.spec_for_device`: no substring guess).
    Raises a ValueError naming the device, listing the known names and saying how to pass a peak
    explicitly (``peak=PeakFlops(...)``) for a GPU without a datasheet here."""
    return hardware.spec_for_device(device_name).name


def measure_matmul_flops_by_size(
    sizes: tuple[int, ...] = (256, 512, 1024),
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    min_run_time_s: float = 0.3,
    num_threads: int | None = None,
) -> list[tuple[int, float]]:
    """Measured FLOP/s of an (n, n) @ (n, n) ``torch.mm`` for each n in ``sizes``: 2·n³ FLOPs over
    the fastest per-call time of the blocks ``torch.utils.benchmark`` times (it warms up and
    synchronises CUDA). The fastest block, not the median, because this is the *achievable*
    rate: on a shared machine other processes only ever slow a block down.
    Returns ``[(n, flops_per_s), ...]``. ``num_threads`` (CPU): threads to use, default torch's
    current setting (see :func:`torch_threads`)."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (tuple, list)):
        raise TypeError(f"sizes must be a tuple of ints, got {type(sizes).__name__} ({sizes!r})")
    if not sizes:
        raise ValueError("sizes must name at least one matrix size")
    for n in sizes:
        positive_int("sizes[i]", n)
    number("min_run_time_s", min_run_time_s, low=0.0, low_open=True, high=60.0)
    out = []
    with torch_threads(num_threads) as threads:
        for n in sizes:
            positive_int("sizes[i]", n)
            a = torch.randn(n, n, dtype=dtype, device=device)
            b = torch.randn(n, n, dtype=dtype, device=device)
            timer = benchmark.Timer("torch.mm(a, b)", globals={"torch": torch, "a": a, "b": b},
                                    num_threads=threads)
            fastest_s = min(timer.blocked_autorange(min_run_time=min_run_time_s).times)
            out.append((n, 2.0 * n**3 / fastest_s))  # (n, n) @ (n, n): n² outputs × n MACs × 2 FLOPs
    return out


def measure_matmul_flops(
    sizes: tuple[int, ...] = (256, 512, 1024),
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    min_run_time_s: float = 0.3,
    num_threads: int | None = None,
) -> PeakFlops:
    """Achievable matmul FLOP/s, measured: the best of :func:`measure_matmul_flops_by_size` over
    ``sizes``. Labelled "measured": it is this machine's own best, not a datasheet number."""
    curve = measure_matmul_flops_by_size(sizes, dtype=dtype, device=device,
                                         min_run_time_s=min_run_time_s, num_threads=num_threads)
    best_n, best_flops = max(curve, key=lambda item: item[1])
    threads = num_threads or torch.get_num_threads()
    where = f"{threads} thread{'s' if threads > 1 else ''}" if device == "cpu" else device
    dtype_name = str(dtype).replace("torch.", "")
    return PeakFlops(best_flops, "measured", f"{dtype_name} torch.mm {best_n}×{best_n} on {where}")


def datasheet_peak(accelerator: str, dtype: str = "bf16") -> PeakFlops:
    """The dense datasheet peak of ``accelerator`` from :mod:`labutils.hardware`."""
    spec = hardware.get(accelerator)
    return PeakFlops(spec.peak_flops(dtype), "datasheet", f"{spec.name} {dtype} dense ({spec.source})")


def default_peak(num_threads: int | None = None) -> PeakFlops:
    """On a GPU: the dense bf16 datasheet peak of this GPU. On a CPU: a measured fp32 matmul peak
    on ``num_threads`` threads (default: torch's current setting)."""
    if torch.cuda.is_available():
        return datasheet_peak(gpu_spec_name(torch.cuda.get_device_name()), "bf16")
    return measure_matmul_flops(num_threads=num_threads)


def _check_autocast(mode: object) -> str:
    if mode not in AUTOCAST_MODES:
        raise ValueError(f"autocast must be one of {AUTOCAST_MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


def autocast_context(device: str, mode: str):
    """The context a training step's forward runs in: ``torch.autocast`` to bf16 on ``device``'s
    type ("cuda" or "cpu") when ``mode`` is "bf16", nothing when it is "none"."""
    if _check_autocast(mode) == "none":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


@dataclass(frozen=True)
class StepMeasurement:
    """Timed training steps (forward + backward + AdamW update) of one model at one batch size."""

    cfg: TransformerConfig
    batch_size: int  # sequences per step
    seq_len: int  # tokens per sequence
    n_params: int  # labutils.model.count_params(cfg)
    step_times_s: tuple[float, ...]  # each timed step (after warm-up)
    flops_per_token: float  # labutils.flops.flops_per_token(cfg, training=True), attention included
    peak: PeakFlops
    device: str
    autocast: str  # "bf16" (forward under bf16 autocast) or "none" (fp32)
    num_threads: int  # torch CPU threads during the steps
    final_loss: float  # loss of the last step (nats), to show the steps really trained

    @property
    def step_time_s(self) -> float:
        """Median step time in seconds."""
        return statistics.median(self.step_times_s)

    @property
    def tokens_per_s(self) -> float:
        return tokens_per_second(self.batch_size, self.seq_len, self.step_time_s)

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops_per_token * self.tokens_per_s

    @property
    def mfu(self) -> float:
        """Model FLOPs per second (exact matmul FLOPs of the step) over the peak, a fraction."""
        return utilization(self.achieved_flops_per_s, self.peak.flops_per_s)


def measure_training_step(
    cfg: TransformerConfig,
    batch_size: int,
    *,
    peak: PeakFlops | None = None,
    warmup: int = 2,
    repeats: int = 5,
    device: str | None = None,
    attn_impl: str = "math",
    seed: int = 0,
    num_threads: int | None = None,
    autocast: str | None = None,
) -> StepMeasurement:
    """Time ``repeats`` real training steps of :class:`labutils.nn.GPT` on random tokens.

    Each step is ``zero_grad``, forward with loss, ``backward`` and ``AdamW.step``, on a batch
    (batch_size, cfg.seq_len) of random token ids. On CUDA each step is bracketed by
    ``torch.cuda.synchronize()``. ``peak`` defaults to :func:`default_peak` (measured on CPU,
    datasheet bf16 on GPU). ``num_threads``: CPU threads for the steps (default: torch's current
    setting); use the same as for the peak.

    ``autocast``: "bf16" runs the forward under ``torch.autocast(device_type, torch.bfloat16)``
    (matmuls in bf16, weights and optimizer in fp32), "none" runs it in fp32. Default: "bf16" on
    CUDA (so MFU is comparable with the dense bf16 datasheet peak), "none" on CPU.
    """
    from labutils.nn import GPT

    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__}")
    b = positive_int("batch_size", batch_size)
    warm, reps = positive_int("warmup", warmup), positive_int("repeats", repeats)
    if peak is not None and not isinstance(peak, PeakFlops):
        raise TypeError(f"peak must be a PeakFlops or None, got {type(peak).__name__} ({peak!r})")
    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    integer("seed", seed, 0)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        torch.device(dev)
    except RuntimeError:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {dev!r}") from None
    peak = peak or default_peak()
    on_cuda = dev.startswith("cuda")
    amp_mode = autocast or ("bf16" if on_cuda else "none")
    _check_autocast(amp_mode)

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GPT(cfg, attn_impl=attn_impl).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    idx = torch.randint(0, cfg.vocab_size, (b, cfg.seq_len), generator=gen).to(dev)  # (B, T)
    targets = torch.roll(idx, -1, dims=1)  # (B, T)
    amp = autocast_context(dev, amp_mode)

    def sync() -> None:
        if on_cuda:
            torch.cuda.synchronize()

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        with amp:
            _, loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss.detach()

    times: list[float] = []
    with torch_threads(num_threads) as threads:
        for _ in range(warm):
            step()
        for _ in range(reps):
            sync()
            t0 = time.perf_counter()
            loss = step()
            sync()
            times.append(time.perf_counter() - t0)
    return StepMeasurement(
        cfg=cfg,
        batch_size=b,
        seq_len=cfg.seq_len,
        n_params=count_params(cfg),
        step_times_s=tuple(times),
        flops_per_token=flops_per_token(cfg, training=True, attention=True),
        peak=peak,
        device=dev,
        autocast=amp_mode,
        num_threads=threads,
        final_loss=float(loss.item()),
    )
