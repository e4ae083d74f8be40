"""labutils.hardware: dense peaks with provenance, name matching, and clear errors."""

from __future__ import annotations

import math

import pytest

from labutils import hardware

REQUIRED = ["V100", "A100-40GB", "A100-80GB", "A100-PCIe-40GB", "A100-PCIe-80GB", "H100-SXM",
            "H100-PCIe", "H100-NVL", "H200", "MI250X", "TPU-v4"]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_parts_have_complete_specs(name: str) -> None:
    spec = hardware.get(name)
    assert spec.memory_bytes > 0 and isinstance(spec.memory_bytes, int)
    assert spec.mem_bandwidth_bytes_per_s > 0 and spec.tdp_watts > 0
    assert len(spec.source) > 20, "every spec says where its numbers come from"
    for dtype in spec.dtypes:
        assert math.isfinite(spec.peak_flops(dtype)) and spec.peak_flops(dtype) > 0


@pytest.mark.parametrize(
    "name, dtype, tflops",
    [
        # Dense peaks from the datasheets (never the 2:4-sparsity figures, which are 2x).
        ("A100-40GB", "bf16", 312), ("A100-80GB", "tf32", 156), ("A100-80GB", "fp32", 19.5),
        ("H100-SXM", "bf16", 989.4), ("H100-SXM", "fp8", 1978.9), ("H100-SXM", "tf32", 494.7),
        ("H200", "bf16", 989.4), ("V100", "fp16", 125), ("V100", "fp32", 15.7),
        ("MI250X", "bf16", 383), ("TPU-v4", "bf16", 275),
    ],
)
def test_dense_peaks(name: str, dtype: str, tflops: float) -> None:
    assert hardware.get(name).peak_flops(dtype) == pytest.approx(tflops * 1e12)


def test_memory_and_bandwidth() -> None:
    assert hardware.get("A100-80GB").memory_bytes == 80 * 2**30  # nvidia-smi: 81920 MiB = 80 GiB
    assert hardware.get("H100-SXM").mem_bandwidth_bytes_per_s == pytest.approx(3.35e12)
    assert hardware.get("A100-40GB").mem_bandwidth_bytes_per_s == pytest.approx(1555e9)
    assert hardware.get("H100-SXM").tdp_watts == 700


@pytest.mark.parametrize("spelling", ["h100-sxm", "H100-SXM", "H100_SXM", "h100", "a100-80gb", "Tpu-V4"])
def test_case_insensitive_names(spelling: str) -> None:
    assert hardware.get(spelling).name in hardware.names()


def test_torch_dtype_spellings() -> None:
    spec = hardware.get("A100-80GB")
    assert spec.peak_flops("bfloat16") == spec.peak_flops("bf16")
    assert spec.peak_flops("float32") == spec.peak_flops("fp32")


def test_unknown_device_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown accelerator 'B300'.*H100-SXM.*TPU-v4"):
        hardware.get("B300")
    with pytest.raises(TypeError):
        hardware.get(100)  # type: ignore[arg-type]


def test_unknown_dtype_lists_valid_dtypes() -> None:
    with pytest.raises(ValueError, match="no dense peak for dtype 'bf16'.*fp32.*fp16"):
        hardware.get("V100").peak_flops("bf16")
    with pytest.raises(ValueError, match="valid dtypes"):
        hardware.get("H100-SXM").peak_flops("fp4")
    with pytest.raises(TypeError):
        hardware.get("H100-SXM").peak_flops(16)  # type: ignore[arg-type]


def test_roofline() -> None:
    spec = hardware.get("H100-SXM")
    ridge = spec.ridge_point("bf16")
    assert ridge == pytest.approx(989.4e12 / 3.35e12)
    assert spec.attainable_flops(ridge / 10) == pytest.approx(spec.peak_flops() / 10)
    assert spec.attainable_flops(ridge * 10) == spec.peak_flops()
    with pytest.raises(ValueError, match="intensity"):
        spec.attainable_flops(0)


def test_hardware_explorer_builds_and_switches() -> None:
    from labutils.widgets.hardware import hardware_explorer

    w = hardware_explorer("H100-SXM", "fp8")
    device, dtype = w.children[0].children
    device.value = "TPU-v4"  # TPU v4 has no fp8: the dtype list follows the part
    assert dtype.value == "bf16" and "fp8" not in dtype.options


# --- usable memory: nvidia-smi's measured total, the printed "GB" kept apart -----------------

@pytest.mark.parametrize("name, mib, printed_gb", [
    ("H100-SXM", 81559, 80),   # nvidia-smi on "NVIDIA H100 80GB HBM3" (thamada/nvidia-smi)
    ("H200", 143771, 141),     # nvidia-smi on the lent H200 (/work/.library/device/KINDS.md)
    ("A100-80GB", 81920, 80),  # nvidia-smi on "NVIDIA A100-SXM4-80GB" (thamada/nvidia-smi)
])
def test_usable_memory_is_the_measured_total(name: str, mib: int, printed_gb: float) -> None:
    spec = hardware.get(name)
    assert spec.memory_bytes == mib * 1024 * 1024
    assert spec.datasheet_memory_gb == printed_gb
    assert spec.datasheet_memory_bytes == printed_gb * 10**9
    assert "nvidia-smi" in spec.memory_source and str(mib) in spec.memory_source


def test_printed_gb_is_neither_the_gb_nor_the_gib_of_the_card() -> None:
    # H100: 81559 MiB is 79.65 GiB (less than "80") but 85.5 GB (more than "80").
    h100 = hardware.get("H100-SXM")
    assert h100.memory_bytes / 2**30 == pytest.approx(79.647, abs=1e-3)
    assert h100.memory_bytes / 1e9 == pytest.approx(85.521, abs=1e-3)
    assert hardware.get("H100-SXM").summary()["datasheet GB"] == 80
    # H200: 143771 MiB is 140.4 GiB, 150.75 GB; the label says 141.
    assert hardware.get("H200").memory_bytes / 1e9 == pytest.approx(150.755, abs=1e-3)


def test_every_spec_says_where_its_memory_comes_from() -> None:
    for spec in hardware.all_specs():
        assert spec.datasheet_memory_gb > 0 and spec.memory_source, spec.name
        assert isinstance(spec.memory_bytes, int)


# --- exact CUDA device names --------------------------------------------------------------------

@pytest.mark.parametrize("device_name, spec", [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA H100 NVL", "H100-NVL"), ("NVIDIA H200", "H200"),
    ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-PCIe-40GB"), ("NVIDIA A100 80GB PCIe", "A100-PCIe-80GB"),
    ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB"),
])
def test_exact_device_names(device_name: str, spec: str) -> None:
    assert hardware.spec_for_device(device_name).name == spec


@pytest.mark.parametrize("name, dtype, tflops", [
    # H100 whitepaper V1.04, Table 1, H100 PCIe column (dense)
    ("H100-PCIe", "bf16", 756), ("H100-PCIe", "fp32", 51.2), ("H100-PCIe", "fp8", 1513),
    # H100 datasheet, H100 NVL column, printed with sparsity: halved by hand here
    ("H100-NVL", "bf16", 1671 / 2), ("H100-NVL", "tf32", 835 / 2), ("H100-NVL", "fp32", 60),
    ("A100-PCIe-80GB", "bf16", 312),
])
def test_variant_peaks(name: str, dtype: str, tflops: float) -> None:
    assert hardware.get(name).peak_flops(dtype) == pytest.approx(tflops * 1e12)


@pytest.mark.parametrize("name, gb_per_s, watts", [
    ("H100-PCIe", 2000, 350), ("H100-NVL", 3900, 400), ("A100-PCIe-80GB", 1935, 300),
    ("A100-PCIe-40GB", 1555, 250),
])
def test_variant_bandwidth_and_power(name: str, gb_per_s: float, watts: float) -> None:
    spec = hardware.get(name)
    assert spec.mem_bandwidth_bytes_per_s == pytest.approx(gb_per_s * 1e9)
    assert spec.tdp_watts == watts


@pytest.mark.parametrize("device_name", [
    "NVIDIA GH200 480GB",  # contains "H200", but its GPU is another part
    "NVIDIA H200 NVL", "NVIDIA H800", "NVIDIA GeForce RTX 4090", "H100", "nvidia h100 80gb hbm3",
])
def test_unknown_devices_are_refused_by_name(device_name: str) -> None:
    with pytest.raises(ValueError) as err:
        hardware.spec_for_device(device_name)
    text = str(err.value)
    assert repr(device_name) in text and "'NVIDIA H100 80GB HBM3'" in text and "peak=" in text


def test_gh200_refusal_says_why() -> None:
    with pytest.raises(ValueError, match="96 GB of HBM3"):
        hardware.spec_for_device("NVIDIA GH200 480GB")


@pytest.mark.parametrize("bad", [None, 3, b"NVIDIA H200", ["NVIDIA H200"]])
def test_device_name_must_be_a_string(bad: object) -> None:
    with pytest.raises(TypeError, match="device_name"):
        hardware.spec_for_device(bad)  # type: ignore[arg-type]


def test_device_names_are_unique_and_listed() -> None:
    assert len(hardware.device_names()) == len(set(hardware.device_names()))
    for spec in hardware.all_specs():
        for n in spec.device_names:
            assert hardware.spec_for_device(f"  {n} ") is spec  # surrounding spaces ignored
