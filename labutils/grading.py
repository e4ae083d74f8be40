"""Per-student numbers for the graded exercises, and their reference answers.

The napkin-math questions of each assignment (``exercises/source/NN_topic/``) use numbers drawn
for each student: a model size, a compute budget, a GPU count... They are derived
deterministically from ``(assignment, student_id)`` by :func:`student_params`, so two students
get different numbers and cannot copy answers, while the autograder recomputes every expected
answer from the same parameters with the tested labutils functions (:func:`expected_answers`).

Where the student id comes from (see ``exercises/README.md``):

* While a student works, the notebook's own ``MY_ID = "..."`` cell supplies it (or
  ``JUPYTERHUB_USER`` on a JupyterHub).
* During ``nbgrader autograde`` the id is the name of the submission folder
  (``submitted/<student_id>/<assignment>/``). ``exercises/tools/nbgrader_ext.py`` puts it in the
  kernel's environment as ``LABUTILS_STUDENT_ID`` before the kernel starts, and
  ``nbgrader`` sets ``NBGRADER_EXECUTION=autograde``. This module reads both **once, when it is
  first imported** (the locked setup cell, before any student code runs), so a later
  ``os.environ[...] = ...`` in a student cell changes nothing; the id a student types is ignored.
  Student cells that reach into grading internals are flagged by ``exercises/tools/grade.py``.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections.abc import Callable

ENV_STUDENT_ID = "LABUTILS_STUDENT_ID"
ENV_EXECUTION = "NBGRADER_EXECUTION"

# Snapshot at import time (see the module docstring).
_AUTOGRADING: bool = os.environ.get(ENV_EXECUTION) == "autograde"
_GRADER_STUDENT_ID: str | None = os.environ.get(ENV_STUDENT_ID) or None

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

PLACEHOLDER_ID = "student-id"  # what MY_ID says in a released notebook until the student sets it
ASSIGNMENTS = ("01_flops", "02_scaling_laws", "03_throughput", "04_memory", "05_data_parallel", "06_tensor_parallel", "07_pipeline",
               "08_context_parallel", "09_precision", "10_mup", "11_recipe", "12_capstone",
               "13_kernels")

GB = 1e9  # bytes
SECONDS_PER_DAY = 86_400.0


def _check_student_id(student_id: object) -> str:
    if not isinstance(student_id, str):
        raise TypeError(f"student_id must be a str, got {type(student_id).__name__}")
    if not _ID_RE.match(student_id):
        raise ValueError(
            "student_id must be 1-64 characters from letters, digits and ._@- (starting with a "
            f"letter or digit), got {student_id!r}"
        )
    return student_id


def _check_assignment(assignment: object) -> str:
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    return assignment  # type: ignore[return-value]


def is_autograding() -> bool:
    """True when this kernel was started by ``nbgrader autograde`` (read at import time)."""
    return _AUTOGRADING


def student_id(fallback: str | None = None) -> str:
    """The id whose parameters this notebook uses.

    During autograding: the submission folder's name, as set by the grader (``fallback`` is
    ignored). Otherwise: ``fallback`` (the notebook's ``MY_ID``), else ``$JUPYTERHUB_USER``.
    Raises ValueError when no valid id is available.
    """
    if _AUTOGRADING:
        if _GRADER_STUDENT_ID is None:
            raise RuntimeError(
                f"autograding without {ENV_STUDENT_ID}: run nbgrader with "
                "exercises/nbgrader_config.py (it installs the StudentExecute preprocessor)"
            )
        return _check_student_id(_GRADER_STUDENT_ID)
    if fallback is None or fallback in ("", PLACEHOLDER_ID):
        fallback = os.environ.get("JUPYTERHUB_USER")
    if fallback is None:
        raise ValueError("set MY_ID to your student id (the name of your submission folder)")
    return _check_student_id(fallback)


def student_seed(student_id: str, assignment: str) -> int:
    """A 64-bit seed from SHA-256 of ``"<assignment>:<student_id>"`` (stable across Python runs,
    unlike ``hash()``)."""
    sid = _check_student_id(student_id)
    a = _check_assignment(assignment)
    digest = hashlib.sha256(f"{a}:{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _round_sig(x: float, digits: int = 2) -> float:
    """``x`` rounded to ``digits`` significant digits (numbers a student can write down)."""
    if x == 0:
        return 0.0
    return float(f"{x:.{digits}g}")


# ---------------------------------------------------------------------------------------------
# Parameters per assignment. Each draw uses only ``rng`` so the numbers depend on the seed alone.
# ---------------------------------------------------------------------------------------------


def _params_01_flops(rng: random.Random) -> dict:
    d_model = rng.choice([512, 768, 1024, 1280, 1536, 2048, 2560])
    head_dim = rng.choice([64, 128])
    return {
        "vocab_size": rng.choice([32_000, 50_257, 65_536]),
        "seq_len": rng.choice([1024, 2048, 4096, 8192]),
        "d_model": d_model,
        "n_layers": rng.randrange(8, 33, 2),
        "n_heads": d_model // head_dim,
        "n_tokens": rng.choice([10, 20, 50, 100, 300]) * 1e9,  # training tokens
    }


def _params_02_scaling_laws(rng: random.Random) -> dict:
    return {
        "compute_flops": _round_sig(10 ** rng.uniform(20.0, 24.5), 2),  # training budget C
        "n_params_small": rng.choice([1, 2, 3, 7, 8]) * 1e9,  # an over-trained small model
    }


def _params_03_throughput(rng: random.Random) -> dict:
    gpu = rng.choice(["A100-80GB", "H100-SXM"])
    n_gpus = rng.choice([64, 128, 256, 512, 1024])
    n_params = rng.choice([1.3, 3, 7, 13, 30, 70]) * 1e9
    global_batch = rng.choice([512, 1024, 2048])  # sequences per step
    seq_len = rng.choice([2048, 4096])
    # Pick a plausible MFU, then report the step time it implies (rounded) as the measurement.
    from labutils.hardware import get

    peak = get(gpu).peak_flops("bf16")
    target_mfu = rng.uniform(0.25, 0.55)
    step_time_s = 6 * n_params * global_batch * seq_len / (n_gpus * peak * target_mfu)
    return {
        "gpu": gpu,
        "n_gpus": n_gpus,
        "n_params": n_params,
        "global_batch": global_batch,
        "seq_len": seq_len,
        "step_time_s": _round_sig(step_time_s, 3),
        "n_tokens": rng.choice([100, 300, 1000, 2000]) * 1e9,
        "serial_fraction": rng.choice([0.001, 0.002, 0.005, 0.01, 0.02]),
        "n_processors": rng.choice([64, 256, 1000, 4096]),
    }


def _params_04_memory(rng: random.Random) -> dict:
    return {
        "n_params": rng.choice([1.5, 3, 7, 13, 30, 70]) * 1e9,
        "dp": rng.choice([8, 16, 32, 64, 128]),
        "zero_stage": rng.choice([1, 2, 3]),
        "gpu": rng.choice(["A100-40GB", "A100-80GB", "H100-SXM"]),
    }


def _params_05_data_parallel(rng: random.Random) -> dict:
    from labutils.parallel.collectives import LINKS

    link = LINKS[rng.choice(sorted(LINKS))]  # the lecture's NVSwitch or InfiniBand bandwidth
    return {
        "n_params": rng.choice([1.3, 3, 7, 13, 30, 70]) * 1e9,
        "world_size": rng.choice([8, 16, 32, 64, 256]),
        "bytes_per_grad": 2,  # bf16 gradients
        "link": link.name,
        "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
        "alpha_s": rng.choice([2e-6, 5e-6, 10e-6, 20e-6]),
    }


def _params_06_tensor_parallel(rng: random.Random) -> dict:
    from labutils.parallel.collectives import LINKS

    link = LINKS[rng.choice(sorted(LINKS))]  # the lecture's NVSwitch or InfiniBand bandwidth
    d_model = rng.choice([4096, 5120, 8192, 12288, 16384])
    return {
        "d_model": d_model,
        "n_heads": d_model // 128,
        "n_layers": rng.choice([32, 40, 48, 64, 80, 96]),
        "seq_len": rng.choice([2048, 4096, 8192]),
        "micro_batch": rng.choice([1, 2, 4]),
        "tp": rng.choice([2, 4, 8]),
        "bytes_per_element": 2,  # bf16 weights and activations
        "link": link.name,
        "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
        "alpha_s": rng.choice([2e-6, 5e-6, 10e-6]),
    }


def _params_07_pipeline(rng: random.Random) -> dict:
    p = rng.choice([4, 8, 16])
    d_model = rng.choice([4096, 5120, 8192, 12288])
    return {
        "d_model": d_model,
        "n_heads": d_model // 128,
        "n_layers": p * rng.choice([2, 3, 4, 6]),
        "seq_len": rng.choice([2048, 4096]),
        "micro_batch": rng.choice([1, 2]),
        "p": p,
        "m": p * rng.choice([1, 2, 4, 8]),  # a multiple of p, as interleaving needs
        "v": rng.choice([2, 3, 4]),
        "t_f_s": rng.choice([0.02, 0.05, 0.1, 0.2, 0.4]),  # forward of one micro-batch, one stage
    }


def _params_08_context_parallel(rng: random.Random) -> dict:
    from labutils.hardware import get
    from labutils.parallel.collectives import LINKS

    link = LINKS[rng.choice(sorted(LINKS))]  # the lecture's NVSwitch or InfiniBand bandwidth
    gpu = rng.choice(["A100-80GB", "H100-SXM"])
    d_model = rng.choice([4096, 5120, 8192])
    n_heads = d_model // 128
    return {
        "seq_len": rng.choice([2**15, 2**16, 2**17, 2**18, 2**19, 2**20]),  # tokens
        "cp": rng.choice([4, 8, 16, 32]),
        "d_model": d_model,
        "n_heads": n_heads,
        "n_kv_heads": rng.choice([8, n_heads]),  # 8: grouped-query attention
        "micro_batch": 1,
        "bytes_per_element": 2,  # bf16
        "gpu": gpu,
        "peak_flops": get(gpu).peak_flops("bf16"),
        "link": link.name,
        "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
    }


def _params_09_precision(rng: random.Random) -> dict:
    return {
        "n_params": rng.choice([1.3, 2.7, 6.7, 13.0, 30.0, 70.0]) * 1e9,
        "recipe": rng.choice(["fp32_adam", "mixed_adam", "sgd_momentum"]),  # labutils.memory.RECIPES
        "grad": _round_sig(10 ** rng.uniform(-10, -5.5)),  # a gradient magnitude to rescue in fp16
        "absmax": rng.choice([0.25, 0.8, 1.7, 3.2, 6.0, 12.5, 60.0]),  # largest |w| of one row
    }


def _params_10_mup(rng: random.Random) -> dict:
    base_batch = rng.choice([131_072, 262_144, 524_288])  # tokens per step of the proxy
    return {
        "base_width": rng.choice([256, 512, 1024]),  # d_model of the tuned proxy
        "width": rng.choice([4096, 5120, 8192, 12288, 16384]),  # d_model of the target (ñ >= 4)
        "lr": rng.choice([3e-3, 6e-3, 1e-2, 2e-2]),  # η, the proxy's best AdamW LR
        "init_std": rng.choice([0.02, 0.025, 0.03, 0.04, 0.05]),  # σ, every layer's base init std
        "output_mult": rng.choice([1.0, 2.0, 4.0, 10.0]),  # α_out, the tuned readout multiplier
        "beta2": rng.choice([0.95, 0.98, 0.99, 0.995]),
        "eps": rng.choice([1e-8, 1e-7, 1e-6]),
        "base_batch_tokens": base_batch,
        "batch_tokens": base_batch * rng.choice([2, 4, 8]),  # b̃ < 10 keeps 1 - b̃(1 - 0.9) > 0
        "const_std": rng.choice([0.008, 0.01, 0.0125, 0.015, 0.02, 0.025]),  # 0.02: GPT-2's
    }


def _params_11_recipe(rng: random.Random) -> dict:
    total = rng.choice([10_000, 20_000, 50_000, 100_000])
    decay = round(total * rng.choice([0.1, 0.2, 0.25]))
    decay_start = total - decay
    return {
        "peak_lr": rng.choice([1e-3, 2e-3, 3e-3, 6e-4]),
        "total_steps": total,
        "warmup_steps": round(total * rng.choice([0.01, 0.02])),
        "decay_steps": decay,
        "cooldown": rng.choice(["linear", "1-sqrt"]),
        "step": decay_start + round(decay * rng.uniform(0.2, 0.8)),  # a step in the cooldown
        "bands": rng.choice([5, 9, 14, 20, 32]),
        "rows": rng.choice([4, 5, 8, 10, 13]),
        "seq_len": rng.choice([512, 568, 1024, 2048]),
        "noise_density": rng.choice([0.15, 0.3, 0.5]),
        "mean_span_length": rng.choice([3, 8]),
    }


def _params_12_capstone(rng: random.Random) -> dict:
    from labutils.hardware import get

    gpu = rng.choice(["A100-80GB", "H100-SXM", "H200"])
    return {
        "compute_flops": _round_sig(10 ** rng.uniform(23.0, 25.5), 2),  # training budget C
        "n_gpus": rng.choice([256, 512, 1024, 2048, 4096]),
        "gpu": gpu,
        "peak_flops": get(gpu).peak_flops("bf16"),
        "mfu": rng.choice([0.3, 0.35, 0.4, 0.45, 0.5]),
        "usd_per_gpu_hour": rng.choice([1.5, 2.0, 2.5, 3.0, 4.0]),
    }


def _params_13_kernels(rng: random.Random) -> dict:
    from labutils.hardware import get

    gpu = rng.choice(["A100-80GB", "H100-SXM", "H200"])
    dtype = rng.choice(["fp32", "bf16"])  # of the matmul: fp32 on CUDA cores, bf16 on tensor cores
    e = 4 if dtype == "fp32" else 2
    ridge = get(gpu).ridge_point(dtype)
    while True:  # tiles at least 5 % from the ridge point: the roofline verdict is never a toss-up
        bm, bn = rng.choice([32, 64, 128, 256]), rng.choice([32, 64, 128, 256])
        if abs(bm * bn / ((bm + bn) * e) / ridge - 1) >= 0.05:
            break
    return {
        "gpu": gpu,
        "n_elements": rng.choice([2**24, 2**26, 2**28, 10**8, 3 * 10**8, 10**9]),  # fp16 vector add
        "M": rng.randrange(1000, 20_000) | 1,  # odd: the last row-block of C sticks out
        "N": rng.choice([3000, 4096, 5120, 11_008, 14_336, 50_257]),
        "K": rng.choice([4096, 5120, 8192]),
        "block_m": bm,
        "block_n": bn,
        "block_k": rng.choice([32, 64]),
        "matmul_dtype": dtype,
        "seq_len": rng.choice([4096, 8192, 16_384, 32_768, 65_536, 131_072]),
        "n_heads": rng.choice([16, 32, 40, 64]),
    }


_PARAMS: dict[str, Callable[[random.Random], dict]] = {
    "01_flops": _params_01_flops,
    "02_scaling_laws": _params_02_scaling_laws,
    "03_throughput": _params_03_throughput,
    "04_memory": _params_04_memory,
    "05_data_parallel": _params_05_data_parallel,
    "06_tensor_parallel": _params_06_tensor_parallel,
    "07_pipeline": _params_07_pipeline,
    "08_context_parallel": _params_08_context_parallel,
    "09_precision": _params_09_precision,
    "10_mup": _params_10_mup,
    "11_recipe": _params_11_recipe,
    "12_capstone": _params_12_capstone,
    "13_kernels": _params_13_kernels,
}


def student_params(student_id: str, assignment: str) -> dict:
    """The numbers ``student_id`` works with in ``assignment`` (same id → same dict, always)."""
    rng = random.Random(student_seed(student_id, assignment))
    return _PARAMS[assignment](rng)


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
    from labutils.parallel.collectives import alpha_beta_time, ring_all_reduce_bytes_per_rank

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
    from labutils.parallel.collectives import Link
    from labutils.parallel.tp_cost import tp_layer_comm_time_s, tp_weight_bytes_per_layer

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
    from labutils.parallel.pipeline_schedule import (bubble_fraction, make_schedule,
                                                     peak_in_flight, pipeline_step_time_s,
                                                     stage_activation_bytes)

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
    from labutils.parallel.context_parallel import (compute_bound_tokens_per_rank,
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


def check_answer(assignment: str, name: str, value: object, *, student: str | None = None) -> None:
    """Assert that ``value`` is within :func:`tolerance` of the reference answer ``name``.

    The reference uses the grader's student id (see the module docstring); ``student`` is used
    only outside autograding. The message never states the expected value.
    """
    sid = student_id(student)
    expected = expected_answers(assignment, student_params(sid, assignment))
    if name not in expected:
        raise ValueError(f"name must be one of {sorted(expected)}, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AssertionError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise AssertionError(f"{name}: expected a finite number, got {value}")
    ref, rtol = expected[name], tolerance(assignment, name)
    if abs(value - ref) > rtol * abs(ref) + 1e-12:
        raise AssertionError(f"{name}: {value:.6g} is not within {rtol:.1%} of the reference answer")


def labutils_references(fn: Callable) -> list[str]:
    """Global names a student's function uses that resolve to labutils (a module or a function).

    Implementation parts ask students to write the formula themselves, so their functions must
    not call the reference. Walks ``fn.__code__`` and nested code objects (inner functions,
    comprehensions) and looks each global name up in ``fn.__globals__`` (and closure variables
    in ``fn.__closure__``). Returns the offending
    names (empty when the function is independent).
    """
    import types

    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError(f"fn must be a Python function, got {type(fn).__name__}")
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    scope = dict(fn.__globals__)
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            scope[var] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        names.add(var)
    bad = []
    for name in sorted(names):
        obj = scope.get(name)
        mod = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
        if isinstance(mod, str) and (mod == "labutils" or mod.startswith("labutils.")):
            bad.append(name)
    return bad
