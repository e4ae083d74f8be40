"""labutils.gpu.kernel_bench: the kernels benchmark's code path and record format, rehearsed on
CPU under the Triton interpreter; the real recording runs on a GPU."""

from __future__ import annotations

import json

import pytest
import torch

from labutils import gpu, kernels
from labutils.gpu import bench

pytestmark = pytest.mark.skipif(not kernels.HAVE_TRITON, reason="triton is not installed")


@pytest.fixture(scope="module")
def rehearsal() -> dict:
    from labutils.gpu.kernel_bench import bench_kernels

    return bench_kernels(rehearse=True)


def test_rehearsal_checks_every_kernel(rehearsal):
    assert rehearsal["rehearsal"] is True
    assert {r["cols"] for r in rehearsal["softmax"]} == {33, 100}
    assert all(r["max_abs_err"] < 1e-3 for r in rehearsal["softmax"])
    assert all(r["max_abs_err"] < 5e-2 for r in rehearsal["matmul"])
    assert all(r["max_abs_err_fwd"] < 5e-3 for r in rehearsal["flash_attention"])
    assert all(r["triton_fwd_bwd_s"] > 0 for r in rehearsal["flash_attention"])


def test_record_format_is_what_the_chapter_reads(rehearsal, tmp_path, monkeypatch):
    from labutils.gpu.kernel_bench import goals_met, summary_rows

    monkeypatch.setattr("labutils.gpu.recordings.RECORDINGS_DIR", tmp_path)
    record = bench.make_record("kernels", rehearsal, "CPU (Triton interpreter)")
    (tmp_path / "kernels.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="rehearsal"):
        gpu.recorded("kernels")  # a rehearsal never passes for a GPU measurement
    # A synthetic stand-in, made in this test only: the rehearsal with the flag cleared.
    record["results"]["rehearsal"] = False
    (tmp_path / "kernels.json").write_text(json.dumps(record))
    loaded = gpu.recorded("kernels")
    rows = summary_rows(loaded["results"])
    assert len(rows) == sum(len(loaded["results"][k]) for k in ("softmax", "matmul", "flash_attention"))
    assert set(goals_met(loaded["results"]).values()) <= {None, True, False}
    assert "CPU" in gpu.provenance(loaded)


def test_kernels_bench_is_registered_and_refuses_without_cuda():
    assert "kernels" in bench.BENCHMARKS
    if not torch.cuda.is_available():
        from labutils.gpu.kernel_bench import bench_kernels

        with pytest.raises(RuntimeError, match="CUDA"):
            bench_kernels()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_kernels_bench_on_gpu_is_correct(tmp_path):
    path = bench.record("kernels", tmp_path)
    res = json.loads(path.read_text())["results"]
    assert res["rehearsal"] is False and res["spec"]
    assert all(r["max_abs_err"] < 1e-2 for r in res["softmax"])
    assert all(r["max_abs_err_fwd"] < 2e-2 for r in res["flash_attention"])
    # The largest softmax input (4096 × 16384 in 2-byte dtypes, 134 MB) is larger than the L2
    # cache (50 MB on an H100/H200), so its bytes must come from HBM: at most the bandwidth.
    # Smaller shapes can be served from L2 and are not bounded by HBM bandwidth.
    largest = max(res["softmax"], key=lambda r: r["cols"])
    assert 0 < largest["fraction_of_bandwidth"] <= 1.0, largest
    # No matmul can beat the dense datasheet peak.
    assert all(0 < r["fraction_of_peak"] <= 1.0 for r in res["matmul"] if "fraction_of_peak" in r)
