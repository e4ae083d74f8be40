"""The instructor's answer key (exercises/tools/answer_key.py), checked against formulas written
out here independently of labutils, and the promise that labutils itself holds no answer."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import pkgutil
import sys
from pathlib import Path

import pytest

import labutils
from labutils import grading

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exercises" / "tools"))
import answer_key  # noqa: E402

NO_TRITON = importlib.util.find_spec("triton") is None
needs_triton = pytest.mark.skipif(NO_TRITON, reason="triton is not installed")
WITH_ANSWERS = [pytest.param(a, marks=needs_triton) if a == "13_kernels" else a
                for a in grading.ASSIGNMENTS]
STUDENTS = ("alice", "bob", "carol-2", "s017")


def key(a: str, sid: str) -> tuple[dict, dict]:
    p = grading.student_params(sid, a)
    return p, answer_key.expected_answers(a, p)


def close(x: float, y: float, rtol: float = 1e-9) -> bool:
    return abs(x - y) <= rtol * abs(y)


@pytest.mark.parametrize("assignment", WITH_ANSWERS)
def test_expected_answers_are_finite_and_positive(assignment):
    for sid in STUDENTS:
        _, answers = key(assignment, sid)
        assert answers and all(math.isfinite(v) and v > 0 for v in answers.values()), answers


def test_01_gpt2_small_by_hand_and_the_formulas():
    # GPT-2 small: 124,439,808 parameters (Radford et al. 2019, the "124M" model), by hand:
    # 50257·768 + 1024·768 + 12·(12·768² + 13·768) + 2·768.
    assert 50257 * 768 + 1024 * 768 + 12 * (12 * 768**2 + 13 * 768) + 2 * 768 == 124_439_808
    for sid in STUDENTS:
        p, ans = key("01_flops", sid)
        V, T, d, L = p["vocab_size"], p["seq_len"], p["d_model"], p["n_layers"]
        n = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d  # tied head, learned positions
        fpt = 6 * (12 * L * d * d + V * d) + 12 * L * d * T  # PaLM, App. B: 6N + 12·L·d·T
        assert ans["n_params"] == n
        assert close(ans["train_flops"], 6 * n * p["n_tokens"])
        assert close(ans["flops_per_token"], fpt)
        assert close(ans["attention_share"], 12 * L * d * T / fpt)


def test_02_chinchilla_closed_form():
    # Hoffmann et al. 2022, Approach 3: E=1.69, A=406.4, B=410.7, α=0.34, β=0.28; minimising
    # L = E + A/N^α + B/D^β under C = 6ND gives N = G·(C/6)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)).
    E, A, B, al, be = 1.69, 406.4, 410.7, 0.34, 0.28
    for sid in STUDENTS:
        p, ans = key("02_scaling_laws", sid)
        c = p["compute_flops"]
        g = (al * A / (be * B)) ** (1 / (al + be))
        n = g * (c / 6) ** (be / (al + be))
        d = c / (6 * n)
        ds = c / (6 * p["n_params_small"])
        assert close(ans["n_opt"], n, 1e-6) and close(ans["d_opt"], d, 1e-6)
        assert close(ans["tokens_per_param"], d / n, 1e-6)
        assert close(ans["loss_opt"], E + A / n**al + B / d**be, 1e-9)
        assert close(ans["loss_small"], E + A / p["n_params_small"] ** al + B / ds**be, 1e-9)


def test_03_throughput_formulas():
    from labutils.hardware import get

    for sid in STUDENTS:
        p, ans = key("03_throughput", sid)
        tps = p["global_batch"] * p["seq_len"] / p["step_time_s"]
        peak = get(p["gpu"]).peak_flops("bf16")  # a datasheet figure, not an answer
        s, n = p["serial_fraction"], p["n_processors"]
        assert close(ans["tokens_per_s"], tps)
        assert close(ans["mfu"], 6 * p["n_params"] * tps / (p["n_gpus"] * peak))
        assert close(ans["train_days"], p["n_tokens"] / tps / 86_400)
        assert close(ans["amdahl_speedup"], 1 / (s + (1 - s) / n))


def test_04_zero_bytes_from_the_paper():
    # ZeRO (Rajbhandari et al. 2020), mixed-precision Adam: 2Ψ + 2Ψ + 12Ψ = 16Ψ bytes at
    # stage 0; stage 1 shards the 12Ψ, stage 2 also the 2Ψ of gradients, stage 3 everything.
    from labutils.hardware import get

    def zero(n, stage, dp):
        return {0: 16 * n, 1: 4 * n + 12 * n / dp, 2: 2 * n + 14 * n / dp, 3: 16 * n / dp}[stage]

    for sid in STUDENTS + ("dave", "erin"):
        p, ans = key("04_memory", sid)
        n, dp, mem = p["n_params"], p["dp"], get(p["gpu"]).memory_bytes
        assert close(ans["bytes_stage0_gb"], zero(n, 0, dp) / 1e9)
        assert close(ans["bytes_sharded_gb"], zero(n, p["zero_stage"], dp) / 1e9)
        k = 0
        while 16 * n / 2**k > mem:
            k += 1
        assert ans["min_dp_zero3"] == 2**k


def test_05_ring_all_reduce():
    # Patarasuk and Yuan 2009: 2(p-1)/p·n bytes sent per rank, t = 2(p-1)α + 2(p-1)/p·n·β.
    for sid in STUDENTS:
        p, ans = key("05_data_parallel", sid)
        nb, w = p["n_params"] * p["bytes_per_grad"], p["world_size"]
        assert close(ans["grad_bytes_gb"], nb / 1e9)
        assert close(ans["sent_per_rank_gb"], 2 * (w - 1) / w * nb / 1e9)
        t = 2 * (w - 1) * p["alpha_s"] + 2 * (w - 1) / w * nb / p["bandwidth_bytes_per_s"]
        assert close(ans["allreduce_s"], t)


def test_12_capstone_budget():
    # The lecture's rule N ≈ 0.1·C^0.5; time = C / (GPUs · peak · MFU); cost per GPU-hour.
    for sid in STUDENTS:
        p, ans = key("12_capstone", sid)
        t = p["compute_flops"] / (p["n_gpus"] * p["peak_flops"] * p["mfu"])
        assert close(ans["n_params"], 0.1 * p["compute_flops"] ** 0.5)
        assert close(ans["train_days"], t / 86_400)
        assert close(ans["cost_musd"], t / 3600 * p["n_gpus"] * p["usd_per_gpu_hour"] / 1e6)


@needs_triton
def test_answers_13_match_labutils_and_common_mistakes_miss():
    import torch

    from labutils.attention import score_matrix_bytes
    from labutils.hardware import get
    from labutils.kernels.matmul import arithmetic_intensity
    from labutils.kernels.vector_add import bytes_moved

    a = "13_kernels"
    verdicts = set()
    for sid in [f"s{i:03d}" for i in range(40)]:
        p = grading.student_params(sid, a)
        ans = answer_key.expected_answers(a, p)
        gpu, dt = get(p["gpu"]), p["matmul_dtype"]
        e = 4 if dt == "fp32" else 2
        bm, bn, m, n = p["block_m"], p["block_n"], p["M"], p["N"]
        intensity = arithmetic_intensity(bm, bn, p["block_k"], e)
        assert ans["tile_intensity"] == intensity
        assert ans["add_time_us"] == bytes_moved(p["n_elements"], torch.float16) / gpu.mem_bandwidth_bytes_per_s * 1e6
        assert ans["programs"] == math.ceil(m / bm) * math.ceil(n / bn)
        assert ans["attainable_tflops"] == min(gpu.peak_flops(dt), intensity * gpu.mem_bandwidth_bytes_per_s) / 1e12
        assert ans["score_gb"] == score_matrix_bytes(p["seq_len"], p["n_heads"], 1, 2) / 1e9
        assert ans["lse_mb"] == p["seq_len"] * p["n_heads"] * 4 / 1e6
        ridge = gpu.ridge_point(dt)
        verdicts.add(intensity > ridge)
        mistakes = {
            "add_time_us": [ans["add_time_us"] * 2 / 3,  # two reads, no write
                            ans["add_time_us"] * 2],  # fp32, not fp16
            "programs": [(m // bm) * (n // bn),  # rounded down: the ragged tiles left out
                         m * n / (bm * bn)],
            "tile_intensity": [intensity / 2,  # a multiply-add counted as one FLOP
                               intensity * e],  # elements, not bytes
            "attainable_tflops": [gpu.peak_flops(dt) / 1e12,  # always compute-bound
                                  intensity * gpu.mem_bandwidth_bytes_per_s / 1e12,  # never
                                  get(p["gpu"]).peak_flops("bf16" if dt == "fp32" else "fp32") / 1e12],
            "score_gb": [ans["score_gb"] * 2, ans["score_gb"] / p["n_heads"]],  # fp32; one head
            "lse_mb": [ans["lse_mb"] / 2, ans["lse_mb"] / p["n_heads"]],  # fp16 lse; one head
        }
        for name, wrongs in mistakes.items():
            answer_key.check_answer(a, name, ans[name], student=sid)
            for wrong in wrongs:
                if wrong == ans[name]:
                    continue  # not a mistake for these numbers (say, min() at the other branch)
                with pytest.raises(AssertionError):
                    answer_key.check_answer(a, name, wrong, student=sid)
    assert verdicts == {True, False}, "some students are compute-bound, some memory-bound"


def test_check_answer_accepts_within_tolerance_and_rejects_outside():
    _, ref = key("01_flops", "alice")
    answer_key.check_answer("01_flops", "train_flops", ref["train_flops"] * 1.015, student="alice")
    with pytest.raises(AssertionError, match="not within"):
        answer_key.check_answer("01_flops", "train_flops", ref["train_flops"] * 1.03, student="alice")
    with pytest.raises(AssertionError):  # the exact count allows 0.1 %
        answer_key.check_answer("01_flops", "n_params", ref["n_params"] * 1.01, student="alice")
    with pytest.raises(ValueError, match="name must be one of"):
        answer_key.check_answer("01_flops", "nope", 1.0, student="alice")


class _Liar(float):
    """The issue's attack: a float whose comparisons and arithmetic always succeed."""

    def __eq__(self, other):
        return True

    __le__ = __ge__ = __lt__ = __gt__ = __eq__

    def __sub__(self, other):
        return _Liar(0.0)

    __rsub__ = __sub__

    def __abs__(self):
        return _Liar(0.0)


def test_check_answer_refuses_anything_but_a_plain_finite_number():
    import numpy as np

    _, ref = key("01_flops", "alice")
    good = ref["train_flops"]
    for bad in (None, "1e20", float("nan"), float("inf"), True, _Liar(good), np.float64(good)):
        with pytest.raises(AssertionError, match="plain number|finite"):
            answer_key.check_answer("01_flops", "train_flops", bad, student="alice")


def test_failure_message_does_not_reveal_the_expected_value():
    _, ref = key("03_throughput", "bob")
    with pytest.raises(AssertionError) as err:
        answer_key.check_answer("03_throughput", "mfu", ref["mfu"] * 2, student="bob")
    assert f"{ref['mfu']:.6g}" not in str(err.value) and f"{ref['mfu']:.3g}" not in str(err.value)


def test_copied_answers_fail_for_another_student():
    _, a = key("02_scaling_laws", "alice")
    _, b = key("02_scaling_laws", "bob")
    assert abs(a["n_opt"] / b["n_opt"] - 1) > 0.05  # these two ids drew different budgets
    with pytest.raises(AssertionError):
        answer_key.check_answer("02_scaling_laws", "n_opt", a["n_opt"], student="bob")


# ---------------------------------------------------------------------------------------------
# No answer key in what students install
# ---------------------------------------------------------------------------------------------

KEY_NAMES = ("expected_answers", "_ANSWERS", "check_answer", "tolerance", "_RTOL",
             "labutils_references")


def _labutils_modules():
    mods = [labutils]
    for info in pkgutil.walk_packages(labutils.__path__, "labutils."):
        if info.name.split(".")[1] in ("gpu", "kernels", "widgets"):  # heavy or optional imports
            continue
        try:
            mods.append(importlib.import_module(info.name))
        except Exception:  # noqa: BLE001 - an optional dependency missing: nothing to inspect
            continue
    return mods


def test_labutils_has_no_answer_key_names_or_text():
    for mod in _labutils_modules():
        leaked = [n for n in KEY_NAMES if hasattr(mod, n)]
        assert not leaked, f"{mod.__name__} exposes {leaked}"
    for path in Path(labutils.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert "_answers_" not in text and "expected_answers" not in text, path


def _numbers(obj, depth=0):
    if depth > 4:
        return
    if type(obj) in (int, float):
        yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _numbers(v, depth + 1)


@pytest.mark.parametrize("assignment", WITH_ANSWERS)
def test_no_public_grading_function_returns_an_answer(assignment):
    public = [(n, f) for n, f in inspect.getmembers(grading, callable)
              if not n.startswith("_") and getattr(f, "__module__", "") == grading.__name__]
    assert {n for n, _ in public} >= {"student_params", "student_seed", "student_id"}
    for sid in STUDENTS[:2]:
        params, answers = key(assignment, sid)
        # An answer equal to a parameter (say an unchanged β2) is public anyway: skip it.
        secret = [v for v in answers.values() if not any(close(v, x, 1e-6) for x in _numbers(params) if x)]
        outputs = []
        for _, fn in public:
            for args in ((sid, assignment), (assignment, params), (params,), (sid,), ()):
                try:
                    outputs.append(fn(*args))
                except Exception:  # noqa: BLE001 - wrong arguments for this function
                    continue
        found = [v for out in outputs for v in _numbers(out) for s in secret if v and close(v, s, 1e-6)]
        assert not found, f"labutils.grading returns answers of {assignment}: {found[:3]}"
