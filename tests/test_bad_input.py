"""Bad input gets a clear error, never a number: a sweep over the public functions of hardware,
device, measure, model, activations, tables, course, mup, coord_check, lr_transfer, nn, kernels
and gpu. Each case names the function, the argument it spoils and the bad values; every value
must raise a ValueError or TypeError (not an AttributeError from deep inside, not a result).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from labutils import activations, coord_check, course, hardware, lr_transfer, measure, model, mup
from labutils import tables
from labutils.gpu import bench, recordings, timing
from labutils.nn import GPT

NAN, INF = float("nan"), float("inf")
NOT_A_COUNT = [-1, 0, NAN, INF, True, "3", None, 2.5]  # for ints >= 1
NOT_POSITIVE = [-1.0, 0, NAN, INF, -INF, True, "1e-3", None]  # for reals > 0
NOT_A_CONFIG = [None, 3, "tiny", {"d_model": 64}]

CFG = model.tiny_config()
H100 = hardware.get("H100-SXM")
PEAK = measure.PeakFlops(1e9, "measured", "test")

CASES: list[tuple[str, Callable[[object], object], list[object]]] = [
    # hardware
    ("hardware.get", hardware.get, [None, 3, "B300", ""]),
    ("hardware.spec_for_device", hardware.spec_for_device, [None, 3, "H100", "NVIDIA GH200 480GB"]),
    ("AcceleratorSpec.peak_flops", H100.peak_flops, [None, 16, "fp4", "int4"]),
    ("AcceleratorSpec.attainable_flops", H100.attainable_flops, NOT_POSITIVE),
    ("AcceleratorSpec.ridge_point", H100.ridge_point, [None, "fp4"]),
    # model
    ("model.default_d_ff(d_model)", lambda b: model.default_d_ff(b, "gelu"), NOT_A_COUNT),
    ("model.default_d_ff(mlp)", lambda b: model.default_d_ff(64, b), [None, "relu", 3]),
    ("model.param_breakdown", model.param_breakdown, NOT_A_CONFIG),
    ("model.count_params", model.count_params, NOT_A_CONFIG),
    ("model.non_embedding_params", model.non_embedding_params, NOT_A_CONFIG),
    ("TransformerConfig(d_model)", lambda b: model.TransformerConfig(
        vocab_size=100, seq_len=8, d_model=b, n_layers=2, n_heads=2), NOT_A_COUNT),
    ("TransformerConfig(n_heads)", lambda b: model.TransformerConfig(
        vocab_size=100, seq_len=8, d_model=16, n_layers=2, n_heads=b), NOT_A_COUNT + [3]),
    ("model.preset", model.preset, [None, 3, "gpt-7"]),
    # activations
    ("activation_bytes_per_layer(seq_len)",
     lambda b: activations.activation_bytes_per_layer(b, 1, 64, 4), NOT_A_COUNT),
    ("activation_bytes_per_layer(n_heads)",
     lambda b: activations.activation_bytes_per_layer(16, 1, 64, b), NOT_A_COUNT),
    ("recompute_flops_overhead(recompute)",
     lambda b: activations.recompute_flops_overhead(b, 16, 64, 2), [None, "some", 1]),
    ("reference_gpt_activation_bytes_per_layer(cfg)",
     lambda b: activations.reference_gpt_activation_bytes_per_layer(b, 1), NOT_A_CONFIG),
    ("reference_gpt_activation_bytes_per_layer(micro_batch)",
     lambda b: activations.reference_gpt_activation_bytes_per_layer(CFG, b), NOT_A_COUNT),
    # tables
    ("markdown_table(rows)", tables.markdown_table, [[], None, "ab", {"a": 1}, [1, 2]]),
    ("markdown_table(floatfmt)", lambda b: tables.markdown_table([{"a": 1.0}], b),
     [None, 3, ".1q", "zz"]),
    # mup
    ("mup.mup(base_width)", lambda b: mup.mup(b, 16), NOT_A_COUNT),
    ("mup.abc_shift(theta)", mup.abc_shift, NOT_POSITIVE),
    ("mup.abc_shift(mult)", lambda b: mup.abc_shift(2.0, mult=b), NOT_POSITIVE),
    ("mup.abc_shift(init_std)", lambda b: mup.abc_shift(2.0, init_std=b), NOT_POSITIVE),
    ("mup.abc_shift(lr)", lambda b: mup.abc_shift(2.0, lr=b), NOT_POSITIVE),
    ("mup.adam_update_size(width)", lambda b: mup.adam_update_size(b, 1e-3), NOT_A_COUNT),
    ("mup.OptimizerHyperparams(lr)", lambda b: mup.OptimizerHyperparams(lr=b), NOT_POSITIVE),
    ("mup.check_widths", lambda b: mup.check_widths((b, 64), 2), NOT_A_COUNT),
    # coord_check
    ("coord_check.width_slopes(widths)", lambda b: coord_check.width_slopes(
        (b, 64), np.ones((2, 2))), NOT_A_COUNT + [64]),
    ("coord_check.width_slopes(widths type)", lambda b: coord_check.width_slopes(
        b, np.ones((2, 2))), [None, "ab", 64]),
    ("CoordCheckConfig(widths)", lambda b: coord_check.CoordCheckConfig(widths=(b, 64)),
     NOT_A_COUNT),
    # lr_transfer
    ("TransferConfig(widths)", lambda b: lr_transfer.TransferConfig(widths=(b, 64)), NOT_A_COUNT),
    ("lr_transfer.as_transfer", lr_transfer.as_transfer, [None, 3, {}]),
    # nn
    ("GPT(cfg)", GPT, NOT_A_CONFIG),
    ("GPT(attn_impl)", lambda b: GPT(CFG, attn_impl=b), [None, "flash3", 3]),
    ("GPT(parametrization)", lambda b: GPT(CFG, parametrization=b), [3, "mup", CFG]),
    # measure
    ("PeakFlops(flops_per_s)", lambda b: measure.PeakFlops(b, "measured", "x"), NOT_POSITIVE),
    ("PeakFlops(label)", lambda b: measure.PeakFlops(1e9, b, "x"), [None, "guessed", 3]),
    ("measure_matmul_flops_by_size(sizes)",
     lambda b: measure.measure_matmul_flops_by_size(b, min_run_time_s=0.01),
     [(), "64", 64, None, (0,), (True,), (2.5,)]),
    ("measure_matmul_flops_by_size(min_run_time_s)",
     lambda b: measure.measure_matmul_flops_by_size((8,), min_run_time_s=b), NOT_POSITIVE),
    ("torch_threads", lambda b: measure.torch_threads(b).__enter__(), [0, -1, True, 2.5, "2"]),
    ("datasheet_peak(accelerator)", measure.datasheet_peak, [None, "B300"]),
    ("gpu_spec_name", measure.gpu_spec_name, [None, "NVIDIA H100", "NVIDIA GH200 480GB"]),
    ("measure_training_step(cfg)", lambda b: measure.measure_training_step(b, 1, peak=PEAK),
     NOT_A_CONFIG),
    ("measure_training_step(batch_size)",
     lambda b: measure.measure_training_step(CFG, b, peak=PEAK), NOT_A_COUNT),
    ("measure_training_step(peak)",
     lambda b: measure.measure_training_step(CFG, 1, peak=b), [3e9, "datasheet", (1e9,)]),
    ("measure_training_step(device)",
     lambda b: measure.measure_training_step(CFG, 1, peak=PEAK, device=b), [3, "gpu0x", "3"]),
    ("measure_training_step(seed)",
     lambda b: measure.measure_training_step(CFG, 1, peak=PEAK, seed=b), [-1, 2.5, True, "0"]),
    ("measure_training_step(autocast)",
     lambda b: measure.measure_training_step(CFG, 1, peak=PEAK, autocast=b), ["fp8", 16]),
    # gpu
    ("bench.spec_for_device_name", bench.spec_for_device_name, [None, "NVIDIA GH200 480GB"]),
    ("timing.time_cuda_s(warmup)", lambda b: timing.time_cuda_s(lambda: None, warmup=b),
     [-1, True, 2.5, "3", None]),
    ("timing.time_cuda_s(repeats)", lambda b: timing.time_cuda_s(lambda: None, repeats=b),
     NOT_A_COUNT),
    ("timing.time_cuda_s(fn)", timing.time_cuda_s, [None, 3]),
    ("timing.wall_time_s(fn)", timing.wall_time_s, [None, 3]),
    ("timing.wall_time_s(repeats)", lambda b: timing.wall_time_s(lambda: None, repeats=b),
     NOT_A_COUNT),
    ("timing.timer_for(device)", timing.timer_for, [None, "cuda", 0]),
    ("bench.bench_matmul(rehearse)", lambda b: bench.bench_matmul(rehearse=b), [1, "yes", None]),
    ("recordings.recorded(name)", recordings.recorded, ["", "a/b", None, 3]),
    ("recordings.check_record", lambda b: recordings.check_record(b, "x.json"), [None, [], {}]),
    # course
    ("course.Chapter(number)", lambda b: course.Chapter(b, "t", "00_x", (), "x"),
     [-1, None, "1", True, 2.5]),
    ("course.Chapter(lectures)", lambda b: course.Chapter(1, "t", "00_x", b, "x"),
     [None, "a.txt", [3]]),
    ("course.Chapter(notebook)", lambda b: course.Chapter(1, "t", b, (), "x"), [None, "", 3]),
]


def _params() -> list:
    out = []
    for name, fn, values in CASES:
        for v in values:
            out.append(pytest.param(fn, v, id=f"{name}-{v!r}"))
    return out


@pytest.mark.parametrize("fn, bad", _params())
def test_bad_input_raises_a_clear_error(fn: Callable[[object], object], bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        fn(bad)


def test_the_sweep_covers_every_module_in_the_brief() -> None:
    prefixes = {name.split("(")[0].split(".")[0] for name, _, _ in CASES}
    for required in ("hardware", "model", "markdown_table", "mup", "coord_check", "GPT",
                     "PeakFlops", "bench", "recordings", "course", "TransferConfig"):
        assert required in prefixes, required


# --- kernels (launchers and byte counts); they import triton -----------------------------------

kernels = pytest.importorskip("labutils.kernels")


def _kernel_cases() -> list:
    if not kernels.HAVE_TRITON:
        return []
    from labutils.kernels import flash_attention as fa
    from labutils.kernels import matmul as mm
    from labutils.kernels import softmax as sm
    from labutils.kernels import vector_add as va

    x = torch.randn(16, 16)
    qkv = [torch.randn(1, 1, 16, 16) for _ in range(3)]
    cases = [
        ("matmul.arithmetic_intensity(block_m)", lambda b: mm.arithmetic_intensity(b, 64, 64, 2),
         NOT_A_COUNT),
        ("matmul.arithmetic_intensity(bytes)", lambda b: mm.arithmetic_intensity(64, 64, 64, b),
         NOT_A_COUNT),
        ("matmul.matmul(block_m)", lambda b: mm.matmul(x, x, block_m=b), [-1, 0, 24, 2.5, "64"]),
        ("matmul.matmul(a)", lambda b: mm.matmul(b, x), [None, [[1.0]], x.T]),
        ("softmax.fused_bytes(rows)", lambda b: sm.fused_bytes(b, 4, torch.float32), NOT_A_COUNT),
        ("softmax.unfused_bytes(cols)", lambda b: sm.unfused_bytes(4, b, torch.float32),
         NOT_A_COUNT),
        ("softmax.fused_bytes(dtype)", lambda b: sm.fused_bytes(4, 4, b), [None, "float32", 4]),
        ("softmax.softmax(x)", sm.softmax, [None, torch.randn(4), torch.randn(4, 4).T]),
        ("vector_add.bytes_moved(n)", lambda b: va.bytes_moved(b, torch.float32), NOT_A_COUNT),
        ("vector_add.bytes_moved(dtype)", lambda b: va.bytes_moved(4, b), [None, "fp32"]),
        ("vector_add.vector_add(block)", lambda b: va.vector_add(x[0], x[0], block=b),
         [-1, 0, True, 24, 2.5, "64", None]),
        ("flash_forward(sm_scale)", lambda b: fa.flash_forward(*qkv, sm_scale=b), NOT_POSITIVE[:-1]),
        ("flash_attention(q)", lambda b: fa.flash_attention(b, qkv[1], qkv[2]),
         [None, torch.randn(16, 16)]),
    ]
    return [pytest.param(fn, v, id=f"{name}-{v!r}") for name, fn, values in cases for v in values]


@pytest.mark.parametrize("fn, bad", _kernel_cases())
def test_kernel_bad_input_raises_a_clear_error(fn: Callable[[object], object], bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        fn(bad)


def test_kernel_bench_rehearse_must_be_a_bool() -> None:
    if not kernels.HAVE_TRITON:
        pytest.skip("triton is not installed")
    from labutils.gpu.kernel_bench import bench_kernels

    with pytest.raises(TypeError, match="rehearse"):
        bench_kernels(rehearse="yes")  # type: ignore[arg-type]


def test_good_inputs_still_give_numbers() -> None:
    """The checks refuse only bad values: the same functions on good values return numbers."""
    assert H100.attainable_flops(2.5) == pytest.approx(2.5 * 3.35e12)
    assert model.default_d_ff(64, "gelu") == 256
    assert mup.abc_shift(2.0, mult=1.0, init_std=1.0, lr=1e-3) == (2.0, 0.5, 5e-4)
    slopes = coord_check.width_slopes((64, 256), np.array([[1.0, 4.0]]))
    assert slopes[0] == pytest.approx(1.0)  # log 4 / log 4
    assert math.isfinite(measure.measure_matmul_flops_by_size((8,), min_run_time_s=0.01)[0][1])
