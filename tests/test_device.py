"""labutils.device and labutils.seed_everything."""

from __future__ import annotations

import os
import platform
import types

import pytest
import torch

import labutils
from labutils import device


def _cpuinfo_model() -> str | None:
    """The first "model name" in /proc/cpuinfo, parsed here independently of labutils."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return None
    names = [ln.partition(":")[2].strip() for ln in text.splitlines() if ln.startswith("model name")]
    return names[0] if names else None


def test_cpu_model_reads_proc_cpuinfo() -> None:
    expected = _cpuinfo_model() or platform.processor() or platform.machine()
    assert device.cpu_model() == expected and expected


def test_describe_on_cpu_names_model_cores_threads(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = device.describe()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert text.startswith(f"CPU: {device.cpu_model()}, {cores} core(s) available, "
                           f"{torch.get_num_threads()} torch threads; torch {torch.__version__}")
    assert "recorded results" in text


def _fake_gpu(monkeypatch, name: str, total_memory: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: types.SimpleNamespace(name=name, total_memory=total_memory))


def test_describe_on_a_gpu_names_its_datasheet_and_memory_in_gib(monkeypatch) -> None:
    # CUDA's total on an H100 SXM: 85045477376 bytes (deviceQuery, thamada/nvidia-smi) = 79.2 GiB
    _fake_gpu(monkeypatch, "NVIDIA H100 80GB HBM3", 85045477376)
    text = device.describe()
    assert text.startswith("GPU: NVIDIA H100 80GB HBM3 (datasheet H100-SXM), 79.2 GiB, 8 device(s)")


def test_describe_on_an_unknown_gpu_says_there_is_no_datasheet(monkeypatch) -> None:
    _fake_gpu(monkeypatch, "NVIDIA GH200 480GB", 97280 * 2**20)
    text = device.describe()
    assert "(no labutils.hardware datasheet: pass a peak explicitly), 95.0 GiB" in text


def test_has_cuda_follows_torch(monkeypatch) -> None:
    for answer in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda a=answer: a)
        assert device.has_cuda() is answer


def test_seed_everything_repeats() -> None:
    labutils.seed_everything(123)
    a = torch.randn(4)
    labutils.seed_everything(123)
    assert torch.equal(a, torch.randn(4))
    labutils.seed_everything(124)
    assert not torch.equal(a, torch.randn(4))
    with pytest.raises(ValueError, match="seed"):
        labutils.seed_everything(-1)
