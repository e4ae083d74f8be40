"""GPU benchmarks whose results the book shows to readers without a GPU.

    python -m labutils.gpu.bench --all --out labutils/data/gpu/
    python -m labutils.gpu.bench matmul --out labutils/data/gpu/

Each benchmark writes ``<name>.json`` with its results and provenance (device, torch, CUDA and
driver versions, date, command). Run it on the GPU you want to record; it refuses to run without
CUDA rather than record CPU numbers under a GPU's name.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from labutils import hardware
from labutils.gpu.timing import time_cuda_s, wall_time_s


def spec_for_device_name(device_name: str) -> hardware.AcceleratorSpec:
    """The datasheet for an exact CUDA device name such as "NVIDIA H100 80GB HBM3" (see
    :func:`labutils.hardware.spec_for_device`; an unknown GPU raises rather than borrowing a
    neighbour's peak)."""
    return hardware.spec_for_device(device_name)


MATMUL_SIZES = (1024, 2048, 4096, 8192)  # n of the n × n × n products timed on a GPU
REHEARSAL_MATMUL_SIZES = (32, 64)  # tiny sizes for a CPU rehearsal of the code path


def bench_matmul(rehearse: bool = False) -> dict[str, Any]:
    """bf16 and fp32 square matmul FLOP/s against the part's dense peak.

    fp32 products run with ``torch.set_float32_matmul_precision("highest")`` (no TF32), so the
    fp32 rows are comparable with the non-tensor-core fp32 peak. ``rehearse=True`` runs the same
    code on the CPU at tiny sizes to check the record's format: no peak, meaningless timings, and
    the record says ``"rehearsal": True`` so the loader refuses it.
    """
    if not isinstance(rehearse, bool):
        raise TypeError(f"rehearse must be a bool, got {type(rehearse).__name__} ({rehearse!r})")
    if not rehearse and not torch.cuda.is_available():
        raise RuntimeError("the matmul benchmark needs CUDA; pass rehearse=True to dry-run it")
    device = "cpu" if rehearse else "cuda"
    spec = None if rehearse else spec_for_device_name(torch.cuda.get_device_name())
    timed = wall_time_s if rehearse else time_cuda_s
    sizes = REHEARSAL_MATMUL_SIZES if rehearse else MATMUL_SIZES
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    rows = []
    try:
        for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            for n in sizes:
                a = torch.randn(n, n, device=device, dtype=dtype)  # (n, n)
                b = torch.randn(n, n, device=device, dtype=dtype)  # (n, n)
                seconds = timed(lambda: a @ b)  # (n, n) @ (n, n) -> (n, n)
                flops = 2 * n**3 / seconds  # n² outputs × n multiply-adds × 2 FLOPs
                row = {"dtype": dtype_name, "n": n, "seconds": seconds, "flops_per_s": flops}
                if spec is not None:
                    row["fraction_of_peak"] = flops / spec.peak_flops(dtype_name)
                rows.append(row)
    finally:
        torch.set_float32_matmul_precision(before)
    return {"spec": spec.name if spec else None, "rehearsal": rehearse,
            "fp32_matmul_precision": "highest", "rows": rows}


#: Models of :func:`bench_training_mfu`: GPT-2 small's shape at widths 256 to 2048 (12 layers,
#: 1024-token context, GPT-2's vocabulary), so MFU can be read against model width on a real GPU.
TRAINING_MFU_WIDTHS = (256, 512, 768, 1024, 1536, 2048)
TRAINING_MFU_BATCH = 8  # sequences per step


def bench_training_mfu() -> dict[str, Any]:
    """Chapter 3's live measurement on the GPU: bf16-autocast training steps (forward, backward,
    AdamW) of the reference GPT at several widths; MFU against the dense bf16 datasheet peak."""
    from labutils.measure import datasheet_peak, measure_training_step
    from labutils.model import TransformerConfig

    spec = spec_for_device_name(torch.cuda.get_device_name())
    peak = datasheet_peak(spec.name, "bf16")
    rows = []
    for d in TRAINING_MFU_WIDTHS:
        cfg = TransformerConfig(vocab_size=50257, seq_len=1024, d_model=d, n_layers=12,
                                n_heads=max(1, d // 64), name=f"d{d}")
        m = measure_training_step(cfg, TRAINING_MFU_BATCH, peak=peak, warmup=3, repeats=10,
                                  device="cuda", attn_impl="sdpa", autocast="bf16")
        rows.append({"d_model": d, "n_layers": cfg.n_layers, "seq_len": cfg.seq_len,
                     "batch": m.batch_size, "n_params": m.n_params, "step_s": m.step_time_s,
                     "tokens_per_s": m.tokens_per_s, "flops_per_token": m.flops_per_token,
                     "mfu": m.mfu, "final_loss": m.final_loss})
    return {"spec": spec.name, "peak_flops_per_s": peak.flops_per_s, "peak": peak.description,
            "autocast": "bf16", "attn_impl": "sdpa", "rows": rows}


def bench_kernels() -> dict[str, Any]:
    """The course's Triton kernels against torch (:mod:`labutils.gpu.kernel_bench`)."""
    from labutils.gpu import kernel_bench  # imports triton: only when this benchmark runs

    return kernel_bench.bench_kernels(rehearse=False)


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "matmul": bench_matmul,
    "training_mfu": bench_training_mfu,
    "kernels": bench_kernels,
}


def _driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def make_record(name: str, results: dict[str, Any], device: str) -> dict[str, Any]:
    """The JSON record of a benchmark run: its results with their provenance (the fields
    :func:`labutils.gpu.recordings.recorded` requires)."""
    return {
        "benchmark": name,
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "driver": _driver_version(),
        "date": datetime.date.today().isoformat(),
        "command": "python -m labutils.gpu.bench " + " ".join(sys.argv[1:]),
        "results": results,
    }


def record(name: str, out_dir: Path) -> Path:
    """Run benchmark ``name`` and write ``out_dir/<name>.json`` with provenance."""
    if not torch.cuda.is_available():
        raise RuntimeError("GPU benchmarks need CUDA; this machine has none")
    data = make_record(name, BENCHMARKS[name](), torch.cuda.get_device_name())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Record GPU benchmarks for the book.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {sorted(BENCHMARKS)}")
    parser.add_argument("--all", action="store_true", help="run every benchmark")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "gpu")
    args = parser.parse_args(argv)
    names = sorted(BENCHMARKS) if args.all else args.names
    if not names:
        parser.error("name a benchmark or pass --all")
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {sorted(BENCHMARKS)}")
    for name in names:
        print(f"wrote {record(name, args.out)}")


if __name__ == "__main__":
    main()
