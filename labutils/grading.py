"""Per-student numbers for the graded exercises (what a student may see; no answers).

The napkin-math questions of each assignment use numbers drawn for each student: a model size,
a compute budget, a GPU count... They are derived deterministically from
``(assignment, student_id)`` by :func:`student_params`, so two students get different numbers
and cannot copy answers. This module holds only those parameters and the id helpers: the
expected answers, their tolerances and the checks live with the instructor's sources
(under ``exercises/tools/`` of the instructor's repository) and reach the grader only; nothing here computes an answer.

Where the student id comes from (see ``exercises/README.md``):

* While a student works, the notebook's own ``MY_ID = "..."`` cell supplies it (or
  ``JUPYTERHUB_USER`` on a JupyterHub).
* During grading the id is the name of the submission folder
  (``submitted/<student_id>/<assignment>/``). ``exercises/tools/nbgrader_ext.py`` puts it in the
  kernel's environment as ``LABUTILS_STUDENT_ID`` before the kernel starts, and
  ``nbgrader`` sets ``NBGRADER_EXECUTION=autograde``. This module reads both **once, when it is
  first imported** (the locked setup cell), so a later ``os.environ[...] = ...`` in a student cell
  changes nothing. The clean grader does not trust the kernel in any case: it recomputes the
  expected answers for the folder's id in its own process.
"""

from __future__ import annotations

import hashlib
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
    from labutils.hardware import LINKS

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
    from labutils.hardware import LINKS

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
    from labutils.hardware import LINKS

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
