"""labutils.gpu: recordings carry provenance; benchmarks run only on real GPUs."""

from __future__ import annotations

import json

import pytest
import torch

from labutils import gpu
from labutils.gpu import bench


def test_missing_recording_says_how_to_make_one() -> None:
    with pytest.raises(FileNotFoundError, match="labutils.gpu.bench"):
        gpu.recorded("no_such_benchmark")


@pytest.mark.parametrize("name", gpu.available())
def test_shipped_recordings_carry_provenance(name: str) -> None:
    data = gpu.recorded(name)
    assert data["device"] and data["date"] and data["torch"]
    assert data["device"] in gpu.provenance(data)


def test_recording_without_provenance_is_rejected(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("labutils.gpu.recordings.RECORDINGS_DIR", tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps({"results": {}}))
    with pytest.raises(ValueError, match="provenance"):
        gpu.recorded("bad")


@pytest.mark.parametrize("device_name, spec", [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA H200", "H200"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
    ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB"),
])
def test_device_names_map_to_datasheets(device_name: str, spec: str) -> None:
    assert bench.spec_for_device_name(device_name).name == spec


def test_unknown_gpu_is_an_error() -> None:
    with pytest.raises(ValueError, match="no labutils.hardware spec"):
        bench.spec_for_device_name("NVIDIA GeForce GT 710")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on CPU-only machines")
def test_bench_refuses_without_cuda(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="need CUDA"):
        bench.record("matmul", tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_matmul_bench_on_gpu(tmp_path) -> None:
    path = bench.record("matmul", tmp_path)
    rows = json.loads(path.read_text())["results"]["rows"]
    assert all(0 < r["fraction_of_peak"] < 1.05 for r in rows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_mfu_bench_on_gpu(tmp_path) -> None:
    path = bench.record("training_mfu", tmp_path)
    data = json.loads(path.read_text())["results"]
    assert data["autocast"] == "bf16"
    assert all(0 < r["mfu"] < 1 for r in data["rows"])

