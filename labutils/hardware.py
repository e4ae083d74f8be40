"""Accelerator datasheets: dense peak FLOP/s per dtype, memory, bandwidth and power, with sources.

Every chapter that needs a peak FLOP/s (MFU, time and energy projections, "does it fit?") takes it
from here, never from a literal: nanoGPT's hard-coded 312e12 once reported 104 % MFU on an H100.

Conventions:
* Peaks are **dense**. Vendors often headline 2:4 structured-sparsity numbers, twice as large;
  those are never used as peaks here (where a datasheet gives only "with sparsity" figures, we
  halve them and say so in ``source``).
* ``fp32`` is the non-tensor-core FP32 peak on NVIDIA parts (MI250X: its FP32 matrix peak);
  ``tf32`` is the tensor-core TF32 peak; ``bf16``/``fp16`` are tensor-core peaks with FP32
  accumulate.
* Memory: GB means 1e9 bytes and GiB means 2**30 bytes. Two numbers are kept apart:
  ``datasheet_memory_gb`` is the capacity as the vendor prints it ("80 GB"), cited in ``source``;
  ``memory_bytes`` is the capacity the course models as usable, the total that ``nvidia-smi``
  reports (MiB x 2**20) where a measurement is on record (``memory_source`` says where), else the
  printed number read as GiB (quoted x 2**30; ``memory_source`` says so). The printed "GB" is
  not the measured size: an A100 80GB reports 81,920 MiB (exactly 80 GiB), an H100 SXM 80GB
  81,559 MiB (79.6 GiB) and an H200 "141 GB" 143,771 MiB (140.4 GiB, 150.8 GB).
  Bandwidth is in bytes/s with GB = 1e9, as the datasheets use it.
* CUDA device names: each NVIDIA spec lists the exact strings ``torch.cuda.get_device_name()``
  returns for it (``device_names``); :func:`spec_for_device` matches them exactly, so an
  "NVIDIA H100 PCIe" never borrows the SXM part's peak and an "NVIDIA GH200 480GB" never the
  H200's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from labutils.course import L1, lecture_cite
from labutils.validate import non_negative, positive, positive_int

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
GiB = 2**30
# torch-style spellings accepted by peak_flops
_DTYPE_ALIASES = {"float64": "fp64", "float32": "fp32", "float16": "fp16", "half": "fp16",
                  "bfloat16": "bf16", "tensorfloat32": "tf32", "float8": "fp8"}


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator's datasheet numbers.

    ``peak_flops_by_dtype`` maps a dtype name (see ``DTYPES``) to dense peak FLOP/s (ops/s for
    int8). Dtypes a part does not accelerate are absent, and asking for them raises.
    """

    name: str
    peak_flops_by_dtype: dict[str, float]
    memory_bytes: int  # usable HBM in bytes: nvidia-smi's total (MiB x 2**20) where measured,
    #                    else the printed "GB" read as GiB; see memory_source and the module doc
    mem_bandwidth_bytes_per_s: float  # HBM bandwidth in bytes/s (GB/s x 1e9)
    tdp_watts: float  # board power limit (TDP/TBP) in watts
    source: str  # where the datasheet numbers (peaks, printed memory, bandwidth, TDP) come from
    interconnect_bytes_per_s: float | None = None  # per-device scale-up link bandwidth, if quoted
    aliases: tuple[str, ...] = field(default=())
    datasheet_memory_gb: float = 0.0  # capacity as printed by the vendor ("80 GB"), cited in source
    memory_source: str = ""  # where memory_bytes comes from (a measurement, or "datasheet")
    device_names: tuple[str, ...] = field(default=())  # exact torch.cuda.get_device_name() strings

    def __post_init__(self) -> None:
        for dtype, value in self.peak_flops_by_dtype.items():
            if dtype not in DTYPES:
                raise ValueError(f"{self.name}: unknown dtype {dtype!r}; valid dtypes: {DTYPES}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{self.name}: peak for {dtype} must be positive, got {value}")
        if self.memory_bytes <= 0 or self.mem_bandwidth_bytes_per_s <= 0 or self.tdp_watts <= 0:
            raise ValueError(f"{self.name}: memory, bandwidth and TDP must be positive")
        if not (self.datasheet_memory_gb > 0 and self.memory_source):
            raise ValueError(f"{self.name}: datasheet_memory_gb and memory_source are required")

    @property
    def datasheet_memory_bytes(self) -> float:
        """The printed capacity in bytes, GB = 1e9 (a label, not the measured size)."""
        return self.datasheet_memory_gb * 1e9

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Dtypes with a published dense peak on this part."""
        return tuple(d for d in DTYPES if d in self.peak_flops_by_dtype)

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` (e.g. "bf16", "fp32", "tf32", "fp8")."""
        if not isinstance(dtype, str):
            raise TypeError(f"dtype must be a string such as 'bf16', got {dtype!r}")
        key = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
        if key not in self.peak_flops_by_dtype:
            raise ValueError(
                f"{self.name} has no dense peak for dtype {dtype!r}; valid dtypes for it: "
                f"{', '.join(self.dtypes)}"
            )
        return self.peak_flops_by_dtype[key]

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Roofline ridge point in FLOPs per byte: peak FLOP/s / HBM bytes/s.

        A kernel doing fewer FLOPs per byte of memory traffic than this is memory-bound on this
        part (Williams, Waterman and Patterson 2009, "Roofline").
        """
        return self.peak_flops(dtype) / self.mem_bandwidth_bytes_per_s

    def attainable_flops(self, intensity_flops_per_byte: float, dtype: str = "bf16") -> float:
        """Roofline bound in FLOP/s: min(peak, intensity x bandwidth) for a kernel of the given
        arithmetic intensity (FLOPs per byte moved to and from HBM)."""
        intensity = positive("intensity_flops_per_byte", intensity_flops_per_byte)
        return min(self.peak_flops(dtype), intensity * self.mem_bandwidth_bytes_per_s)

    def summary(self, dtype: str = "bf16") -> dict[str, float | str]:
        """The numbers a reader compares across parts, in human units (TFLOP/s, GiB, GB/s, W).

        "memory GiB" is the usable capacity (``memory_bytes`` / 2**30); "datasheet GB" is the
        printed label, kept beside it so the two are never mistaken for each other."""
        return {
            "name": self.name,
            f"{dtype} TFLOP/s (dense)": self.peak_flops(dtype) / 1e12,
            "memory GiB": self.memory_bytes / GiB,
            "datasheet GB": self.datasheet_memory_gb,
            "bandwidth GB/s": self.mem_bandwidth_bytes_per_s / 1e9,
            "ridge FLOP/byte": self.ridge_point(dtype),
            "TDP W": self.tdp_watts,
        }


_NV_V100 = "NVIDIA Tesla V100 datasheet (SXM2 32GB), 2020"
_NV_A100 = ("NVIDIA A100 Tensor Core GPU datasheet, 2021: SXM 40GB (1,555 GB/s) and 80GB (2,039 GB/s), "
            "400 W; dense = half the sparsity figures")
_NV_A100_PCIE = ("NVIDIA A100 Tensor Core GPU datasheet, 2021, PCIe columns: same peaks as SXM; 40GB "
                 "1,555 GB/s 250 W, 80GB 1,935 GB/s 300 W; NVLink bridge 600 GB/s")
_NV_H100 = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper (V1.04), Table 1, H100 SXM5 dense "
            "peaks; H100 datasheet for memory, bandwidth and TDP")
_NV_H100_PCIE = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper (V1.04), Tables 1 and 3, H100 "
                 "PCIe column: dense BF16 756 (1513 with sparsity), TF32 378, FP8 1513, FP32 51.2, "
                 "FP64 25.6 TFLOPS, TDP 350 W; H100 datasheet: 80 GB HBM2e at 2 TB/s, NVLink 600 GB/s")
_NV_H100_NVL = ("NVIDIA H100 Tensor Core GPU datasheet, H100 NVL column (per GPU): FP64 30, FP32 60 "
                "TFLOPS; TF32 835, BF16/FP16 1,671, FP8/INT8 3,341 with sparsity, halved here; 94 GB "
                "at 3.9 TB/s; 350-400 W (400 W used); NVLink 600 GB/s")
_NV_H200 = ("NVIDIA H200 Tensor Core GPU datasheet (SXM), 2024: same compute as H100 SXM, 141 GB "
            "HBM3e at 4.8 TB/s; dense = half the sparsity figures")
_AMD_MI250X = ("AMD Instinct MI250X datasheet, 2021 (fp64 and fp32 are the matrix peaks, 95.7; "
               "the vector peaks are 47.9; 560 W is the peak board power)")
_TPU_V4 = ("Google Cloud TPU v4 documentation (275 TFLOP/s bf16, 32 GiB HBM2, 1200 GB/s); "
           "Jouppi et al. 2023, 'TPU v4', ISCA (192 W maximum chip power)")

MiB = 2**20
# Measured totals (nvidia-smi "Memory-Usage" total, i.e. FB Memory Usage Total, in MiB). CUDA can
# allocate a little less: the driver reserves some (454 MiB on the H100 below, whose CUDA
# deviceQuery reports 81106 MiB).
_SMI_H100 = ("measured: nvidia-smi total 81559 MiB on 'NVIDIA H100 80GB HBM3', driver 565.57.01 "
             "(github.com/thamada/nvidia-smi, nvsim/H100SXMx8_smi.py)")
_SMI_A100_80 = ("measured: nvidia-smi total 81920 MiB on 'NVIDIA A100-SXM4-80GB', driver 555.42.02 "
                "(github.com/thamada/nvidia-smi, gls/A100SXMx4_smi.py)")
_SMI_H200 = ("measured: nvidia-smi total 143771 MiB on 'NVIDIA H200', driver 580.159.03, on this "
             "workplace's lent H200 machine, 2026-10-27 (/work/.library/device/KINDS.md)")
_PRINTED_AS_GIB = "datasheet: the printed GB read as GiB (no nvidia-smi measurement on record)"

_H100_SXM_PEAKS = {"fp64": 33.5e12, "fp32": 66.9e12, "tf32": 494.7e12, "bf16": 989.4e12,
                   "fp16": 989.4e12, "fp8": 1978.9e12, "int8": 1978.9e12}
_A100_PEAKS = {"fp64": 9.7e12, "fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12,
               "int8": 624e12}

_SPECS: tuple[AcceleratorSpec, ...] = (
    AcceleratorSpec(
        "V100-SXM2-32GB", {"fp64": 7.8e12, "fp32": 15.7e12, "fp16": 125e12},
        32 * GiB, 900e9, 300, _NV_V100, interconnect_bytes_per_s=300e9, aliases=("V100",),
        datasheet_memory_gb=32, memory_source=_PRINTED_AS_GIB,
        device_names=("Tesla V100-SXM2-32GB",),
    ),
    AcceleratorSpec(
        "A100-40GB", dict(_A100_PEAKS), 40 * GiB, 1555e9, 400, _NV_A100,
        interconnect_bytes_per_s=600e9, aliases=("A100", "A100-SXM4-40GB"),
        datasheet_memory_gb=40, memory_source=_PRINTED_AS_GIB,
        device_names=("NVIDIA A100-SXM4-40GB",),
    ),
    AcceleratorSpec(
        "A100-80GB", dict(_A100_PEAKS), 81920 * MiB, 2039e9, 400, _NV_A100,
        interconnect_bytes_per_s=600e9, aliases=("A100-SXM4-80GB",),
        datasheet_memory_gb=80, memory_source=_SMI_A100_80,
        device_names=("NVIDIA A100-SXM4-80GB",),
    ),
    AcceleratorSpec(
        "A100-PCIe-40GB", dict(_A100_PEAKS), 40 * GiB, 1555e9, 250, _NV_A100_PCIE,
        interconnect_bytes_per_s=600e9, datasheet_memory_gb=40, memory_source=_PRINTED_AS_GIB,
        device_names=("NVIDIA A100-PCIE-40GB",),
    ),
    AcceleratorSpec(
        "A100-PCIe-80GB", dict(_A100_PEAKS), 80 * GiB, 1935e9, 300, _NV_A100_PCIE,
        interconnect_bytes_per_s=600e9, datasheet_memory_gb=80, memory_source=_PRINTED_AS_GIB,
        device_names=("NVIDIA A100 80GB PCIe",),
    ),
    AcceleratorSpec(
        "H100-SXM", dict(_H100_SXM_PEAKS), 81559 * MiB, 3.35e12, 700, _NV_H100,
        interconnect_bytes_per_s=900e9,
        aliases=("H100", "H100-SXM5", "H100-SXM5-80GB", "H100-80GB"),
        datasheet_memory_gb=80, memory_source=_SMI_H100,
        device_names=("NVIDIA H100 80GB HBM3",),
    ),
    AcceleratorSpec(
        "H100-PCIe", {"fp64": 25.6e12, "fp32": 51.2e12, "tf32": 378e12, "bf16": 756e12,
                      "fp16": 756e12, "fp8": 1513e12, "int8": 1513e12},
        80 * GiB, 2.0e12, 350, _NV_H100_PCIE, interconnect_bytes_per_s=600e9,
        datasheet_memory_gb=80, memory_source=_PRINTED_AS_GIB,
        device_names=("NVIDIA H100 PCIe",),
    ),
    AcceleratorSpec(
        "H100-NVL", {"fp64": 30e12, "fp32": 60e12, "tf32": 417.5e12, "bf16": 835.5e12,
                     "fp16": 835.5e12, "fp8": 1670.5e12, "int8": 1670.5e12},
        94 * GiB, 3.9e12, 400, _NV_H100_NVL, interconnect_bytes_per_s=600e9,
        datasheet_memory_gb=94, memory_source=_PRINTED_AS_GIB,
        device_names=("NVIDIA H100 NVL",),
    ),
    AcceleratorSpec(
        "H200", dict(_H100_SXM_PEAKS), 143771 * MiB, 4.8e12, 700, _NV_H200,
        interconnect_bytes_per_s=900e9, aliases=("H200-SXM", "H200-141GB"),
        datasheet_memory_gb=141, memory_source=_SMI_H200,
        device_names=("NVIDIA H200",),
    ),
    AcceleratorSpec(
        "MI250X", {"fp64": 95.7e12, "fp32": 95.7e12, "bf16": 383e12, "fp16": 383e12,
                   "int8": 383e12},
        128 * GiB, 3.2768e12, 560, _AMD_MI250X, aliases=("AMD-MI250X",),
        datasheet_memory_gb=128, memory_source=_PRINTED_AS_GIB,
    ),
    AcceleratorSpec(
        "TPU-v4", {"bf16": 275e12, "int8": 275e12},
        32 * GiB, 1200e9, 192, _TPU_V4, aliases=("TPUv4", "TPU v4"),
        datasheet_memory_gb=32, memory_source="datasheet: Cloud TPU v4 documentation gives 32 GiB",
    ),
)

#: CUDA device names seen in the wild that look like a spec above but are a different part. They
#: are refused by name, with the reason, rather than matched to a near neighbour.
UNSUPPORTED_DEVICES: dict[str, str] = {
    "NVIDIA GH200 480GB": (
        "the GH200 superchip's GPU has 96 GB of HBM3 (nvidia-smi reports 97871 MiB), not the "
        "H200's 141 GB at 4.8 TB/s, and its power limit covers the Grace CPU too; 480GB is the "
        "CPU's LPDDR5X. labutils.hardware has no checked GH200 datasheet figures yet"
    ),
    "NVIDIA H200 NVL": "the H200 NVL (PCIe) has its own, lower peaks and power; no datasheet here yet",
    "NVIDIA H800": "the H800 is an export variant with other interconnect figures; no datasheet here",
}

def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(" ", "-")


_BY_KEY: dict[str, AcceleratorSpec] = {}
for _spec in _SPECS:
    for _n in (_spec.name, *_spec.aliases):
        _BY_KEY[_key(_n)] = _spec


def names() -> list[str]:
    """Canonical names of the accelerators we have datasheets for."""
    return [s.name for s in _SPECS]


def get(name: str) -> AcceleratorSpec:
    """The spec for ``name``, matched case-insensitively ("h100-sxm", "A100-80GB", "tpu-v4")."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}; valid names: {', '.join(names())}")
    try:
        return _BY_KEY[_key(name)]
    except KeyError:
        raise ValueError(
            f"unknown accelerator {name!r}; valid names: {', '.join(names())}"
        ) from None


def all_specs() -> list[AcceleratorSpec]:
    """Every spec, in the order of ``names()``."""
    return list(_SPECS)


def device_names() -> list[str]:
    """Every exact CUDA device name (``torch.cuda.get_device_name()``) with a spec here."""
    return [n for spec in _SPECS for n in spec.device_names]


_BY_DEVICE: dict[str, AcceleratorSpec] = {n: s for s in _SPECS for n in s.device_names}


def spec_for_device(device_name: str) -> AcceleratorSpec:
    """The spec whose ``device_names`` contains ``device_name`` exactly (surrounding spaces are
    ignored), e.g. "NVIDIA H100 80GB HBM3" -> H100-SXM, "NVIDIA H100 PCIe" -> H100-PCIe.

    No substring or nearest-name guess: an unknown device raises a ValueError that names it, lists
    the known device names, and says how to pass a peak yourself.
    """
    if not isinstance(device_name, str):
        raise TypeError(f"device_name must be a string such as 'NVIDIA H100 80GB HBM3', got "
                        f"{type(device_name).__name__} ({device_name!r})")
    key = device_name.strip()
    if key in _BY_DEVICE:
        return _BY_DEVICE[key]
    why = f" ({UNSUPPORTED_DEVICES[key]})" if key in UNSUPPORTED_DEVICES else ""
    raise ValueError(
        f"no labutils.hardware spec for CUDA device {device_name!r}{why}. Known device names: "
        f"{', '.join(repr(n) for n in device_names())}. Pass a peak explicitly instead, e.g. "
        "measure_training_step(..., peak=PeakFlops(flops_per_s, 'datasheet', 'my GPU bf16 dense')) "
        "from labutils.measure, or datasheet_peak('<spec name>') for a part listed in "
        "labutils.hardware.names()"
    )


# ----------------------------------------------------------------------------------------------
# Links between GPUs: one model for the planner and every cost model
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A network link as the α–β model sees it.

    ``bandwidth_bytes_per_s`` is the bandwidth a ring step gets (β = 1 / bandwidth);
    ``latency_s`` is α, the fixed cost of one message.
    """

    name: str
    bandwidth_bytes_per_s: float  # bytes/s, GB = 1e9
    latency_s: float  # seconds per message (α)
    source: str

    def __post_init__(self) -> None:
        positive("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s)
        non_negative("latency_s", self.latency_s)

    @property
    def beta_s_per_byte(self) -> float:
        """β in seconds per byte."""
        return 1.0 / self.bandwidth_bytes_per_s


_LECTURE_LINKS = lecture_cite(L1, "slide 'Training: Going beyond 1 node'")
_LATENCY_NOTE = ("latency is an assumed order of magnitude (the lecture gives none); it only "
                 "matters for small messages")
NVSWITCH = Link("NVSwitch (inside a node)", 900e9, 5e-6,
                f"{_LECTURE_LINKS}: 'NVSwitch: 900 GB/s' (NVIDIA's figure is the bidirectional "
                f"total per H100, i.e. 450 GB/s each way); {_LATENCY_NOTE}")
INFINIBAND = Link("InfiniBand (between nodes)", 50e9, 10e-6,
                  f"{_LECTURE_LINKS}: 'Infiniband: 50 GB/s' (400 Gb/s NDR, per direction); "
                  f"{_LATENCY_NOTE}")
NVSWITCH_PER_DIRECTION = Link(
    "NVSwitch, one direction", 450e9, 5e-6,
    "NVIDIA H100 datasheet: NVLink 900 GB/s is the bidirectional total (18 links x 50 GB/s), "
    f"450 GB/s each way; {_LATENCY_NOTE}")
LINKS: dict[str, Link] = {"nvswitch": NVSWITCH, "infiniband": INFINIBAND}  # the lecture's two
GPUS_PER_NODE = 8  # an HGX/DGX node: 8 GPUs on one NVSwitch
GPUS_PER_NODE_SOURCE = (f"{_LECTURE_LINKS}: 'Node: 4-8 GPUs'; NVIDIA DGX A100 and DGX H100 "
                        "datasheets: 8 GPUs per system")


def check_link(name: str, value: object) -> Link:
    """``value`` if it is a :class:`Link`, else a TypeError naming ``name``."""
    if not isinstance(value, Link):
        raise TypeError(f"{name} must be a labutils.hardware.Link (e.g. NVSWITCH, INFINIBAND), "
                        f"got {value!r}")
    return value


def link_for(group_span: int, gpus_per_node: int = GPUS_PER_NODE, intra: Link = NVSWITCH,
             inter: Link = INFINIBAND) -> Link:
    """The slowest link a group of GPUs crosses: ``intra`` (NVSwitch) when the group is laid out
    within ``group_span`` ≤ ``gpus_per_node`` consecutive GPUs, else ``inter`` (InfiniBand).

    ``group_span`` is how many consecutive ranks the group's members lie within (a TP group of
    t: t; a DP group outermost: all GPUs), not its size.
    """
    span = positive_int("group_span", group_span)
    per_node = positive_int("gpus_per_node", gpus_per_node)
    intra, inter = check_link("intra", intra), check_link("inter", inter)
    return intra if span <= per_node else inter
