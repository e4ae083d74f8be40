"""labutils.gpu: recordings carry provenance; benchmarks run only on real GPUs.

The GPU-only tests bound each measurement by what a correct one must satisfy, not by a loose
"0 < x < 1.05": a matmul cannot beat the dense datasheet peak (a fraction above 1 means the peak
or the FLOP count is wrong: nanoGPT's 104 % MFU), and on a Hopper part cuBLAS reaches about 0.8
of it at 8192³ in bf16 (788 of 989 TFLOP/s on the lent H200, /work/.library/device/KINDS.md),
so a largest-size fraction under one half means the timing or the peak is off.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from labutils import gpu, hardware
from labutils.gpu import bench


def test_missing_recording_says_how_to_make_one() -> None:
    with pytest.raises(FileNotFoundError, match="labutils.gpu.bench"):
        gpu.recorded("no_such_benchmark")


def test_every_shipped_file_is_a_valid_recording() -> None:
    """Runs with no recording too: only the README and JSON recordings that load may be there."""
    files = sorted(p.name for p in gpu.RECORDINGS_DIR.iterdir())
    assert "README.md" in files
    for name in files:
        if name == "README.md":
            continue
        assert name.endswith(".json"), f"stray file {name} in {gpu.RECORDINGS_DIR}"
        data = gpu.recorded(name.removesuffix(".json"))
        assert data["device"] in gpu.provenance(data)
        hardware.spec_for_device(data["device"])  # recorded on a GPU we have a datasheet for


def _point_loader_at(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("labutils.gpu.recordings.RECORDINGS_DIR", tmp_path)


def test_recording_without_provenance_is_rejected(tmp_path, monkeypatch) -> None:
    _point_loader_at(tmp_path, monkeypatch)
    (tmp_path / "bad.json").write_text(json.dumps({"results": {}}))
    with pytest.raises(ValueError, match="provenance"):
        gpu.recorded("bad")


def test_cpu_rehearsal_of_the_matmul_bench_is_refused(tmp_path, monkeypatch) -> None:
    """A record really produced by the matmul benchmark's CPU rehearsal never loads as a GPU
    measurement, though it has every provenance field."""
    results = bench.bench_matmul(rehearse=True)
    assert results["rehearsal"] is True and results["spec"] is None
    assert {(r["dtype"], r["n"]) for r in results["rows"]} == {
        (d, n) for d in ("bf16", "fp32") for n in bench.REHEARSAL_MATMUL_SIZES}
    for r in results["rows"]:
        assert "fraction_of_peak" not in r  # no datasheet peak on a CPU
        assert r["flops_per_s"] == pytest.approx(2 * r["n"] ** 3 / r["seconds"])
    record = bench.make_record("matmul", results, "CPU rehearsal")
    assert set(gpu.recordings.REQUIRED_KEYS) <= set(record)
    _point_loader_at(tmp_path, monkeypatch)
    (tmp_path / "matmul.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="rehearsal"):
        gpu.recorded("matmul")


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_broken_files_are_refused(tmp_path, monkeypatch, text: str, match: str) -> None:
    _point_loader_at(tmp_path, monkeypatch)
    (tmp_path / "x.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        gpu.recorded("x")


@pytest.mark.parametrize("field, value, match", [
    ("date", "yesterday", "YYYY-MM-DD"), ("device", "", "device"), ("device", None, "device"),
])
def test_records_with_bad_provenance_are_refused(field: str, value: object, match: str) -> None:
    record = {k: "x" for k in gpu.recordings.REQUIRED_KEYS} | {"date": "2026-12-01",
                                                                "results": {}}
    gpu.check_record(record, "ok.json")  # the well-formed record passes
    with pytest.raises(ValueError, match=match):
        gpu.check_record(record | {field: value}, "bad.json")


@pytest.mark.parametrize("name", ["", "../secrets", 3, None])
def test_recording_name_is_checked(name: object) -> None:
    with pytest.raises(ValueError, match="name"):
        gpu.recorded(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("device_name, spec", [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA H200", "H200"),
    ("NVIDIA H100 PCIe", "H100-PCIe"), ("NVIDIA H100 NVL", "H100-NVL"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
    ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB"),
])
def test_device_names_map_to_datasheets(device_name: str, spec: str) -> None:
    assert bench.spec_for_device_name(device_name).name == spec


@pytest.mark.parametrize("device_name", ["NVIDIA GeForce GT 710", "NVIDIA GH200 480GB"])
def test_unknown_gpu_is_an_error(device_name: str) -> None:
    with pytest.raises(ValueError, match="no labutils.hardware spec"):
        bench.spec_for_device_name(device_name)


def test_bench_matmul_rehearse_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="rehearse"):
        bench.bench_matmul(rehearse="yes")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on CPU-only machines")
def test_bench_refuses_without_cuda(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="need CUDA"):
        bench.record("matmul", tmp_path)
    with pytest.raises(RuntimeError, match="needs CUDA"):
        bench.bench_matmul()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_matmul_bench_on_gpu(tmp_path) -> None:
    path = bench.record("matmul", tmp_path)
    res = json.loads(path.read_text())["results"]
    rows = res["rows"]
    assert res["rehearsal"] is False and res["spec"]
    assert all(0 < r["fraction_of_peak"] <= 1.0 for r in rows), rows  # never above the peak
    largest_bf16 = max((r for r in rows if r["dtype"] == "bf16"), key=lambda r: r["n"])
    assert largest_bf16["fraction_of_peak"] >= 0.5, largest_bf16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_mfu_bench_on_gpu(tmp_path) -> None:
    path = bench.record("training_mfu", tmp_path)
    data = json.loads(path.read_text())["results"]
    assert data["autocast"] == "bf16"
    # MFU counts only the model's matmul FLOPs, a subset of what the step runs: it can never
    # exceed the dense peak. The steps must really train: a finite loss below ln(vocab) + 1.
    assert all(0 < r["mfu"] <= 1.0 for r in data["rows"]), data["rows"]
    assert all(math.isfinite(r["final_loss"]) and r["final_loss"] < math.log(50257) + 1
               for r in data["rows"])
