"""Benchmark of the course's Triton kernels (:mod:`labutils.kernels`) against their PyTorch
counterparts: fused softmax vs ``torch.softmax`` (GB/s against the HBM bandwidth), tiled matmul
vs ``torch.matmul`` (TFLOP/s against the dense peak), FlashAttention-2 forward and
forward+backward vs ``scaled_dot_product_attention`` with the flash backend.

On a GPU, ``python -m labutils.gpu.bench kernels`` records it (see :mod:`labutils.gpu.bench`).
``rehearse=True`` runs the same code on tiny sizes wherever it is (under the Triton interpreter
on a CPU) to check the code path and the record's format before spending GPU time; its timings
mean nothing, and the recording loader refuses a rehearsal.
"""

from __future__ import annotations

from typing import Any

import torch

from labutils import hardware
from labutils.gpu.timing import timer_for

SOFTMAX_COLS = (1024, 4096, 16384)  # columns of a (4096, cols) softmax
MATMUL_SIZES = (1024, 2048, 4096, 8192)  # n of an n × n × n matmul
FLASH_SEQ_LENS = (512, 1024, 2048, 4096, 8192, 16384)
FLASH_HEADS, FLASH_HEAD_DIM = 16, 128  # one sequence of 16 heads of 128 (Llama-like)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def bench_kernels(rehearse: bool = False) -> dict[str, Any]:
    """Time every kernel against torch; with ``rehearse``, on tiny sizes and any device."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from labutils.kernels import device as kernel_device
    from labutils.kernels import flash_attention
    from labutils.kernels import matmul
    from labutils.kernels import softmax

    if not isinstance(rehearse, bool):
        raise TypeError(f"rehearse must be a bool, got {type(rehearse).__name__} ({rehearse!r})")
    dev = kernel_device()
    if dev.type != "cuda" and not rehearse:
        raise RuntimeError("the kernels benchmark needs CUDA; pass rehearse=True to dry-run it")
    timed = timer_for(dev)
    spec = None
    if dev.type == "cuda":
        spec = hardware.spec_for_device(torch.cuda.get_device_name())
    dtypes = ("fp32", "fp16") if rehearse else ("bf16", "fp16")
    cols = (33, 100) if rehearse else SOFTMAX_COLS
    sizes = (32, 48) if rehearse else MATMUL_SIZES
    seqs = (16, 40) if rehearse else FLASH_SEQ_LENS
    heads, head_dim = (2, 16) if rehearse else (FLASH_HEADS, FLASH_HEAD_DIM)
    rows_sm = 8 if rehearse else 4096
    backend = SDPBackend.FLASH_ATTENTION if dev.type == "cuda" else SDPBackend.MATH

    softmax_rows = []
    for dt in dtypes:
        for c in cols:
            x = torch.randn(rows_sm, c, device=dev, dtype=DTYPES[dt])
            err = (softmax.softmax(x).float() - torch.softmax(x.float(), -1)).abs().max().item()
            t_tri, t_torch = timed(lambda: softmax.softmax(x)), timed(lambda: torch.softmax(x, -1))
            nbytes = softmax.fused_bytes(rows_sm, c, x.dtype)
            row = {"dtype": dt, "rows": rows_sm, "cols": c, "max_abs_err": err,
                   "triton_s": t_tri, "torch_s": t_torch, "triton_bytes_per_s": nbytes / t_tri}
            if spec:
                row["fraction_of_bandwidth"] = nbytes / t_tri / spec.mem_bandwidth_bytes_per_s
            softmax_rows.append(row)

    matmul_rows = []
    for dt in dtypes:
        for n in sizes:
            a = torch.randn(n, n, device=dev, dtype=DTYPES[dt])
            b = torch.randn(n, n, device=dev, dtype=DTYPES[dt])
            blocks = dict(block_m=16, block_n=16, block_k=16) if rehearse else dict(
                block_m=128, block_n=128, block_k=64, num_warps=8, num_stages=3)
            err = (matmul.matmul(a, b, **blocks).float() - matmul.matmul_reference(a, b).float()).abs().max().item()
            t_tri, t_torch = timed(lambda: matmul.matmul(a, b, **blocks)), timed(lambda: a @ b)
            flops = 2.0 * n**3
            row = {"dtype": dt, "n": n, "blocks": blocks, "max_abs_err": err, "triton_s": t_tri,
                   "torch_s": t_torch, "triton_flops_per_s": flops / t_tri,
                   "torch_flops_per_s": flops / t_torch, "triton_over_torch": t_torch / t_tri}
            if spec and dt in spec.dtypes:
                row["fraction_of_peak"] = flops / t_tri / spec.peak_flops(dt)
            matmul_rows.append(row)

    flash_rows = []
    for dt in dtypes:
        for T in seqs:
            q, k, v = (torch.randn(1, heads, T, head_dim, device=dev, dtype=DTYPES[dt],
                                   requires_grad=True) for _ in range(3))
            do = torch.randn_like(q)

            def ours_fwd():
                return flash_attention.flash_attention(q, k, v, True)

            def sdpa_fwd():
                with sdpa_kernel(backend):
                    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

            def fwd_bwd(fwd):
                return lambda: torch.autograd.grad(fwd(), (q, k, v), do)

            err = (ours_fwd().float() - sdpa_fwd().float()).abs().max().item()
            # causal attention: half of 4·T²·D FLOPs per head forward, 2.5× that forward+backward
            fwd_flops = 0.5 * 4.0 * heads * T * T * head_dim
            t = {"triton_fwd_s": timed(ours_fwd), "sdpa_fwd_s": timed(sdpa_fwd),
                 "triton_fwd_bwd_s": timed(fwd_bwd(ours_fwd)), "sdpa_fwd_bwd_s": timed(fwd_bwd(sdpa_fwd))}
            flash_rows.append({"dtype": dt, "seq_len": T, "heads": heads, "head_dim": head_dim,
                               "causal": True, "max_abs_err_fwd": err, **t,
                               "triton_fwd_flops_per_s": fwd_flops / t["triton_fwd_s"],
                               "triton_over_sdpa_fwd": t["sdpa_fwd_s"] / t["triton_fwd_s"],
                               "triton_over_sdpa_fwd_bwd": t["sdpa_fwd_bwd_s"] / t["triton_fwd_bwd_s"]})
    import triton

    return {"spec": spec.name if spec else None, "triton": triton.__version__,
            "rehearsal": rehearse, "softmax": softmax_rows, "matmul": matmul_rows,
            "flash_attention": flash_rows,
            "flops_note": "flash FLOPs: causal forward = 0.5·4·H·T²·D; matmul 2n³"}


#: The issue's performance goals, checked on a recording by :func:`goals_met`.
GOALS = {
    "flash_fwd_within_1.5x_of_sdpa_at_4k": "Triton FlashAttention forward ≥ 1/1.5 of the SDPA "
                                           "flash backend's speed at sequence length ≥ 4096",
    "matmul_70pct_of_torch_bf16_4096": "tiled matmul ≥ 70 % of torch.matmul's speed, bf16 4096³",
    "softmax_70pct_of_bandwidth": "fused softmax ≥ 70 % of the HBM bandwidth (largest shape)",
}


def goals_met(results: dict[str, Any]) -> dict[str, bool | None]:
    """Which :data:`GOALS` a recording meets (None: the recording lacks the row)."""
    flash = [r for r in results["flash_attention"] if r["seq_len"] >= 4096]
    mm = [r for r in results["matmul"] if r["dtype"] == "bf16" and r["n"] == 4096]
    sm = [r for r in results["softmax"] if "fraction_of_bandwidth" in r]
    largest = max(sm, key=lambda r: r["cols"]) if sm else None
    return {
        "flash_fwd_within_1.5x_of_sdpa_at_4k":
            all(r["triton_over_sdpa_fwd"] >= 1 / 1.5 for r in flash) if flash else None,
        "matmul_70pct_of_torch_bf16_4096": mm[0]["triton_over_torch"] >= 0.7 if mm else None,
        "softmax_70pct_of_bandwidth":
            largest["fraction_of_bandwidth"] >= 0.7 if largest else None,
    }


def summary_rows(results: dict[str, Any]) -> list[dict[str, str]]:
    """One table row per measurement of a recording, for the kernels chapter."""
    rows = []
    for r in results["softmax"]:
        rows.append({"kernel": "softmax", "dtype": r["dtype"], "size": f"{r['rows']}×{r['cols']}",
                     "Triton (ms)": f"{r['triton_s'] * 1e3:.3g}", "torch (ms)": f"{r['torch_s'] * 1e3:.3g}",
                     "Triton achieved": f"{r['triton_bytes_per_s'] / 1e9:.3g} GB/s"})
    for r in results["matmul"]:
        rows.append({"kernel": "matmul", "dtype": r["dtype"], "size": f"{r['n']}³",
                     "Triton (ms)": f"{r['triton_s'] * 1e3:.3g}", "torch (ms)": f"{r['torch_s'] * 1e3:.3g}",
                     "Triton achieved": f"{r['triton_flops_per_s'] / 1e12:.3g} TFLOP/s"})
    for r in results["flash_attention"]:
        rows.append({"kernel": "flash fwd (causal)", "dtype": r["dtype"],
                     "size": f"T={r['seq_len']}, {r['heads']}×{r['head_dim']}",
                     "Triton (ms)": f"{r['triton_fwd_s'] * 1e3:.3g}",
                     "torch (ms)": f"{r['sdpa_fwd_s'] * 1e3:.3g}",
                     "Triton achieved": f"{r['triton_fwd_flops_per_s'] / 1e12:.3g} TFLOP/s"})
    return rows
