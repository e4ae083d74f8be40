"""The answer key of the graded exercises (instructor only: never shipped to students).

Expected napkin-math answers for each assignment, computed from a student's parameters
(``labutils.grading.student_params``) with the tested labutils functions, their tolerances, and
:func:`check_answer`, which the clean grader (``exercises/tools/clean_check.py``) calls in its own
process on plain numbers taken out of the student's kernel. ``labutils`` (what students install)
holds the per-student parameters only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from labutils.grading import _check_assignment, student_params

GB = 1e9  # bytes
SECONDS_PER_DAY = 86_400.0


# ---------------------------------------------------------------------------------------------
# Reference answers, computed with the tested labutils functions.
# ---------------------------------------------------------------------------------------------


def _answers_01_flops(p: dict) -> dict[str, float]:
    from labutils.flops import attention_share, flops_per_token, training_flops
    from labutils.model import TransformerConfig, count_params

    cfg = TransformerConfig(p["vocab_size"], p["seq_len"], p["d_model"], p["n_layers"], p["n_heads"])
    n = count_params(cfg)
    return {
        "n_params": float(n),
        "train_flops": training_flops(n, p["n_tokens"]),
        "flops_per_token": flops_per_token(cfg, training=True, attention=True),
        "attention_share": attention_share(cfg),
    }


def _answers_02_scaling_laws(p: dict) -> dict[str, float]:
    from labutils.scaling import HOFFMANN_2022

    n_opt, d_opt = HOFFMANN_2022.compute_optimal(p["compute_flops"])
    n_small = p["n_params_small"]
    d_small = p["compute_flops"] / (6 * n_small)  # same budget spent on the small model
    return {
        "n_opt": float(n_opt),
        "d_opt": float(d_opt),
        "tokens_per_param": float(d_opt / n_opt),
        "loss_opt": float(HOFFMANN_2022.loss(n_opt, d_opt)),
        "loss_small": float(HOFFMANN_2022.loss(n_small, d_small)),
    }


def _answers_03_throughput(p: dict) -> dict[str, float]:
    from labutils.hardware import get
    from labutils.throughput import amdahl_speedup, mfu, tokens_per_second, training_time_s

    tps = tokens_per_second(p["global_batch"], p["seq_len"], p["step_time_s"])
    peak = get(p["gpu"]).peak_flops("bf16")
    return {
        "tokens_per_s": float(tps),
        "mfu": float(mfu(p["n_params"], tps, p["n_gpus"], peak)),
        "train_days": float(training_time_s(p["n_tokens"], tps)) / SECONDS_PER_DAY,
        "amdahl_speedup": float(amdahl_speedup(p["serial_fraction"], p["n_processors"])),
    }


def _answers_04_memory(p: dict) -> dict[str, float]:
    from labutils.hardware import get
    from labutils.memory import model_state_bytes

    n, dp, stage = int(p["n_params"]), p["dp"], p["zero_stage"]
    plain = model_state_bytes(n, recipe="mixed_adam", zero_stage=0, dp=dp)["total"]
    sharded = model_state_bytes(n, recipe="mixed_adam", zero_stage=stage, dp=dp)["total"]
    mem = get(p["gpu"]).memory_bytes
    # Smallest power-of-two DP degree at which ZeRO-3 model states fit in the GPU's memory.
    min_dp = 1
    while model_state_bytes(n, recipe="mixed_adam", zero_stage=3, dp=min_dp)["total"] > mem:
        min_dp *= 2
    return {
        "bytes_stage0_gb": plain / GB,
        "bytes_sharded_gb": sharded / GB,
        "min_dp_zero3": float(min_dp),
    }


def _answers_05_data_parallel(p: dict) -> dict[str, float]:
    from labutils.parallel.alpha_beta import alpha_beta_time
    from labutils.parallel.collectives import ring_all_reduce_bytes_per_rank

    n_bytes = int(p["n_params"] * p["bytes_per_grad"])
    w = p["world_size"]
    beta = 1.0 / p["bandwidth_bytes_per_s"]
    return {
        "grad_bytes_gb": n_bytes / GB,
        "sent_per_rank_gb": ring_all_reduce_bytes_per_rank(n_bytes, w) / GB,
        "allreduce_s": float(alpha_beta_time(n_bytes, w, p["alpha_s"], beta, algorithm="ring")),
    }


def _answers_06_tensor_parallel(p: dict) -> dict[str, float]:
    from labutils.activations import activation_bytes_per_layer
    from labutils.hardware import Link
    from labutils.parallel.tensor.cost import tp_layer_comm_time_s, tp_weight_bytes_per_layer

    s, b, h, a, t, e = (p["seq_len"], p["micro_batch"], p["d_model"], p["n_heads"], p["tp"],
                        p["bytes_per_element"])
    link = Link(p["link"], p["bandwidth_bytes_per_s"], p["alpha_s"], "student parameters")
    return {
        "weights_per_rank_gb": tp_weight_bytes_per_layer(h, t, bytes_per_element=e) * p["n_layers"] / GB,
        "act_tp_gb": activation_bytes_per_layer(s, b, h, a, tp=t) / GB,
        "act_sp_gb": activation_bytes_per_layer(s, b, h, a, tp=t, sequence_parallel=True) / GB,
        "comm_s": tp_layer_comm_time_s(s, b, h, t, link, bytes_per_element=e),
    }


def _answers_07_pipeline(p: dict) -> dict[str, float]:
    from labutils.parallel.pipeline.cost import (bubble_fraction, pipeline_step_time_s,
                                                 stage_activation_bytes)
    from labutils.parallel.pipeline.schedule import make_schedule, peak_in_flight

    stages, m = p["p"], p["m"]
    peak = peak_in_flight(make_schedule("1f1b", stages, m))[0]
    return {
        "bubble_interleaved": bubble_fraction(stages, m, p["v"]),
        "step_time_s": pipeline_step_time_s(stages, m, p["t_f_s"], 2 * p["t_f_s"]),
        "stage0_activations_gb": stage_activation_bytes(
            peak, p["n_layers"] // stages, p["seq_len"], p["micro_batch"], p["d_model"],
            p["n_heads"]) / GB,
    }


def _answers_08_context_parallel(p: dict) -> dict[str, float]:
    from labutils.attention import score_matrix_bytes
    from labutils.parallel.context.cost import (compute_bound_tokens_per_rank,
                                                ring_kv_bytes_per_rank)

    e, b = p["bytes_per_element"], p["micro_batch"]
    return {
        "score_bytes_gb": score_matrix_bytes(p["seq_len"], p["n_heads"], b, e) / GB,
        "kv_sent_per_rank_gb": ring_kv_bytes_per_rank(
            p["seq_len"], p["cp"], p["d_model"], p["n_heads"], p["n_kv_heads"], b, e) / GB,
        "compute_bound_tokens": compute_bound_tokens_per_rank(
            p["peak_flops"], p["bandwidth_bytes_per_s"], d_model=p["d_model"],
            n_heads=p["n_heads"], n_kv_heads=p["n_kv_heads"], micro_batch=b,
            bytes_per_element=e),
    }


def _answers_09_precision(p: dict) -> dict[str, float]:
    from labutils.memory import model_state_bytes
    from labutils.mixed_precision import min_loss_scale
    from labutils.precision import smallest_normal
    from labutils.quantization import absmax_error_bound

    return {
        "train_state_gb": model_state_bytes(int(p["n_params"]), recipe=p["recipe"])["total"] / GB,
        "loss_scale": min_loss_scale(p["grad"], smallest_normal("fp16")),
        "int8_error": absmax_error_bound(p["absmax"]),
    }


def _answers_10_mup(p: dict) -> dict[str, float]:
    from labutils.mup import OptimizerHyperparams, layer_hyperparams, mup

    # The lecture's table without its zero inits; the head size does not enter these rows.
    param = mup(p["base_width"], 64, init_std=p["init_std"], output_mult=p["output_mult"],
                zero_init=False)
    opt = OptimizerHyperparams(lr=p["lr"], betas=(0.9, p["beta2"]), eps=p["eps"],
                               batch_ratio=p["batch_tokens"] / p["base_batch_tokens"])
    hidden = layer_hyperparams("hidden", param, p["width"], 1, opt)  # depth enters residual_out only
    readout = layer_hyperparams("readout", param, p["width"], 1, opt)
    return {
        "hidden_lr": hidden.lr,
        "hidden_init_std": hidden.init_std,
        "readout_mult": readout.multiplier,
        "beta2": hidden.betas[1],
        "eps": hidden.eps,
        "crossover_width": 1 / p["const_std"] ** 2,  # 1/√n = σ (labutils.mup.init_std_by_width)
    }


def _answers_11_recipe(p: dict) -> dict[str, float]:
    from labutils.data_quality import lsh_threshold
    from labutils.objectives import loss_tokens
    from labutils.schedules import wsd

    return {
        "lr": wsd(p["step"], p["total_steps"], peak_lr=p["peak_lr"],
                  warmup_steps=p["warmup_steps"], decay_steps=p["decay_steps"],
                  cooldown=p["cooldown"]),
        "jaccard_threshold": lsh_threshold(p["bands"], p["rows"]),
        "span_loss_tokens": loss_tokens("span", p["seq_len"], noise_density=p["noise_density"],
                                        mean_span_length=p["mean_span_length"]),
    }


def _answers_12_capstone(p: dict) -> dict[str, float]:
    from labutils.plan import lecture_rule_optimal
    from labutils.throughput import cost_usd, projected_time_s

    t = projected_time_s(p["compute_flops"], p["n_gpus"], p["peak_flops"], p["mfu"])
    return {
        "n_params": lecture_rule_optimal(p["compute_flops"])[0],
        "train_days": t / SECONDS_PER_DAY,
        "cost_musd": cost_usd(t, p["n_gpus"], p["usd_per_gpu_hour"]) / 1e6,
    }


def _answers_13_kernels(p: dict) -> dict[str, float]:
    import torch

    from labutils.attention import score_matrix_bytes
    from labutils.hardware import get
    from labutils.kernels.matmul import arithmetic_intensity
    from labutils.kernels.vector_add import bytes_moved

    gpu = get(p["gpu"])
    e = 4 if p["matmul_dtype"] == "fp32" else 2
    intensity = arithmetic_intensity(p["block_m"], p["block_n"], p["block_k"], e)
    programs = -(-p["M"] // p["block_m"]) * -(-p["N"] // p["block_n"])  # triton.cdiv on each axis
    return {
        "add_time_us": bytes_moved(p["n_elements"], torch.float16) / gpu.mem_bandwidth_bytes_per_s * 1e6,
        "programs": float(programs),
        "tile_intensity": intensity,
        "attainable_tflops": gpu.attainable_flops(intensity, p["matmul_dtype"]) / 1e12,
        "score_gb": score_matrix_bytes(p["seq_len"], p["n_heads"], 1, 2) / GB,  # fp16 scores
        "lse_mb": p["seq_len"] * p["n_heads"] * 4 / 1e6,  # FlashAttention's fp32 lse, one per row
    }


_ANSWERS: dict[str, Callable[[dict], dict[str, float]]] = {
    "01_flops": _answers_01_flops,
    "02_scaling_laws": _answers_02_scaling_laws,
    "03_throughput": _answers_03_throughput,
    "04_memory": _answers_04_memory,
    "05_data_parallel": _answers_05_data_parallel,
    "06_tensor_parallel": _answers_06_tensor_parallel,
    "07_pipeline": _answers_07_pipeline,
    "08_context_parallel": _answers_08_context_parallel,
    "09_precision": _answers_09_precision,
    "10_mup": _answers_10_mup,
    "11_recipe": _answers_11_recipe,
    "12_capstone": _answers_12_capstone,
    "13_kernels": _answers_13_kernels,
}

# Relative tolerance per answer: 2 % unless stated (napkin math with 2-3 significant digits).
DEFAULT_RTOL = 0.02
_RTOL: dict[tuple[str, str], float] = {
    ("01_flops", "n_params"): 0.001,  # an exact count
    ("04_memory", "min_dp_zero3"): 0.0,  # an integer
    ("09_precision", "loss_scale"): 0.0,  # a power of two
    ("10_mup", "beta2"): 0.001,
    ("13_kernels", "programs"): 0.0,  # an integer  # near 1: 2 % would accept the unchanged β2
    ("02_scaling_laws", "loss_opt"): 0.002,  # losses differ by hundredths of a nat
    ("02_scaling_laws", "loss_small"): 0.002,
}


def expected_answers(assignment: str, params: dict) -> dict[str, float]:
    """Reference answers for ``params`` (a dict from :func:`student_params`)."""
    return _ANSWERS[_check_assignment(assignment)](params)


def tolerance(assignment: str, name: str) -> float:
    """Relative tolerance used to grade answer ``name`` of ``assignment``."""
    return _RTOL.get((_check_assignment(assignment), name), DEFAULT_RTOL)


def plain_number(name: str, value: object) -> float:
    """``value`` if it is exactly an int or a float and finite; AssertionError otherwise.

    Subclasses of int/float (whose ``==`` could be rigged), bools, NumPy scalars, NaN and inf are
    rejected: the clean grader receives answers as JSON, so only plain numbers should arrive.
    """
    if type(value) not in (int, float):
        raise AssertionError(f"{name}: expected a plain number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise AssertionError(f"{name}: expected a finite number, got {value}")
    return float(value)


def check_answer(assignment: str, name: str, value: object, *, student: str) -> None:
    """Assert that ``value`` is within :func:`tolerance` of answer ``name`` for ``student``.

    ``student`` is the submission folder's name (the grader's, never the notebook's). The
    message never states the expected value.
    """
    expected = expected_answers(assignment, student_params(student, assignment))
    if name not in expected:
        raise ValueError(f"name must be one of {sorted(expected)}, got {name!r}")
    x = plain_number(name, value)
    ref, rtol = expected[name], tolerance(assignment, name)
    if abs(x - ref) > rtol * abs(ref) + 1e-12:
        raise AssertionError(f"{name}: {x:.6g} is not within {rtol:.1%} of the reference answer")
