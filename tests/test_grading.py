"""labutils.grading: per-student parameters, reference answers and the id the grader uses."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys

import pytest

from labutils import grading

# 13_kernels' answers use labutils.kernels, which needs Triton (Linux x86-64 wheels only).
NO_TRITON = importlib.util.find_spec("triton") is None
needs_triton = pytest.mark.skipif(NO_TRITON, reason="triton is not installed")
WITH_ANSWERS = [pytest.param(a, marks=needs_triton) if a == "13_kernels" else a
                for a in grading.ASSIGNMENTS]


def test_seed_is_stable_and_depends_on_both_inputs():
    # Pinned: changing the derivation would silently change every student's numbers mid-course.
    assert grading.student_seed("alice", "01_flops") == 0x1F9E8C66B7B7C88B
    s = grading.student_seed("alice", "01_flops")
    assert s == grading.student_seed("alice", "01_flops")
    assert s != grading.student_seed("bob", "01_flops")
    assert s != grading.student_seed("alice", "02_scaling_laws")
    assert 0 <= s < 2**64


@pytest.mark.parametrize("assignment", grading.ASSIGNMENTS)
def test_params_are_deterministic_and_vary_between_students(assignment):
    a = grading.student_params("alice", assignment)
    assert a == grading.student_params("alice", assignment)
    others = [grading.student_params(f"s{i:03d}", assignment) for i in range(20)]
    assert sum(o != a for o in others) >= 18, "parameters barely depend on the student id"


@pytest.mark.parametrize("assignment", WITH_ANSWERS)
def test_expected_answers_are_finite_and_positive(assignment):
    for sid in ("alice", "bob", "carol-2"):
        answers = grading.expected_answers(assignment, grading.student_params(sid, assignment))
        assert answers and all(math.isfinite(v) and v > 0 for v in answers.values()), answers


def test_answers_01_match_labutils_directly():
    from labutils.flops import flops_per_token, training_flops
    from labutils.model import TransformerConfig, count_params

    p = grading.student_params("alice", "01_flops")
    cfg = TransformerConfig(p["vocab_size"], p["seq_len"], p["d_model"], p["n_layers"], p["n_heads"])
    ans = grading.expected_answers("01_flops", p)
    assert ans["n_params"] == count_params(cfg)
    assert ans["train_flops"] == training_flops(count_params(cfg), p["n_tokens"])
    assert ans["flops_per_token"] == flops_per_token(cfg)
    assert 0 < ans["attention_share"] < 1


def test_answers_04_min_dp_is_the_smallest_power_of_two_that_fits():
    from labutils.hardware import get
    from labutils.memory import model_state_bytes

    for sid in ("alice", "bob", "dave"):
        p = grading.student_params(sid, "04_memory")
        dp = int(grading.expected_answers("04_memory", p)["min_dp_zero3"])
        mem = get(p["gpu"]).memory_bytes
        assert model_state_bytes(int(p["n_params"]), zero_stage=3, dp=dp)["total"] <= mem
        if dp > 1:
            assert model_state_bytes(int(p["n_params"]), zero_stage=3, dp=dp // 2)["total"] > mem


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
        ans = grading.expected_answers(a, p)
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
            grading.check_answer(a, name, ans[name], student=sid)
            for wrong in wrongs:
                if wrong == ans[name]:
                    continue  # not a mistake for these numbers (say, min() at the other branch)
                with pytest.raises(AssertionError):
                    grading.check_answer(a, name, wrong, student=sid)
    assert verdicts == {True, False}, "some students are compute-bound, some memory-bound"


def test_check_answer_accepts_within_tolerance_and_rejects_outside():
    ref = grading.expected_answers("01_flops", grading.student_params("alice", "01_flops"))
    grading.check_answer("01_flops", "train_flops", ref["train_flops"] * 1.015, student="alice")
    with pytest.raises(AssertionError, match="not within"):
        grading.check_answer("01_flops", "train_flops", ref["train_flops"] * 1.03, student="alice")
    # the exact count allows 0.1 %
    with pytest.raises(AssertionError):
        grading.check_answer("01_flops", "n_params", ref["n_params"] * 1.01, student="alice")
    for bad in (None, "1e20", float("nan"), float("inf"), True):
        with pytest.raises(AssertionError):
            grading.check_answer("01_flops", "train_flops", bad, student="alice")
    with pytest.raises(ValueError, match="name must be one of"):
        grading.check_answer("01_flops", "nope", 1.0, student="alice")


def test_failure_message_does_not_reveal_the_expected_value():
    ref = grading.expected_answers("03_throughput", grading.student_params("bob", "03_throughput"))
    with pytest.raises(AssertionError) as err:
        grading.check_answer("03_throughput", "mfu", ref["mfu"] * 2, student="bob")
    assert f"{ref['mfu']:.6g}" not in str(err.value) and f"{ref['mfu']:.3g}" not in str(err.value)


def test_copied_answers_fail_for_another_student():
    a = grading.expected_answers("02_scaling_laws", grading.student_params("alice", "02_scaling_laws"))
    b = grading.expected_answers("02_scaling_laws", grading.student_params("bob", "02_scaling_laws"))
    assert abs(a["n_opt"] / b["n_opt"] - 1) > 0.05  # these two ids drew different budgets
    with pytest.raises(AssertionError):
        grading.check_answer("02_scaling_laws", "n_opt", a["n_opt"], student="bob")


@pytest.mark.parametrize("bad, exc", [("", ValueError), ("a b", ValueError), ("../x", ValueError),
                                      ("x" * 65, ValueError), (3, TypeError), (None, TypeError)])
def test_bad_student_ids_raise(bad, exc):
    with pytest.raises(exc):
        grading.student_seed(bad, "01_flops")


def test_bad_assignment_raises():
    with pytest.raises(ValueError, match="assignment must be one of"):
        grading.student_params("alice", "99_nope")


def test_student_id_outside_autograding_uses_the_fallback(monkeypatch):
    if grading.is_autograding():
        pytest.skip("running under nbgrader autograde")
    assert grading.student_id("alice") == "alice"
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    with pytest.raises(ValueError, match="MY_ID"):
        grading.student_id(None)
    with pytest.raises(ValueError, match="MY_ID"):
        grading.student_id(grading.PLACEHOLDER_ID)  # the released notebook's MY_ID, unchanged
    monkeypatch.setenv("JUPYTERHUB_USER", "hubuser")
    assert grading.student_id(None) == "hubuser"


def _autograde_kernel(code: str, student: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (grading.ENV_STUDENT_ID, grading.ENV_EXECUTION)}
    env[grading.ENV_EXECUTION] = "autograde"
    if student is not None:
        env[grading.ENV_STUDENT_ID] = student
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_autograding_uses_the_grader_id_read_at_import():
    # The id a student writes (MY_ID) is ignored, and changing the environment after the setup
    # cell imported labutils.grading changes nothing.
    code = ("import os; from labutils import grading\n"
            "os.environ['LABUTILS_STUDENT_ID'] = 'alice'\n"
            "print(grading.student_id('alice'))")
    out = _autograde_kernel(code, "bob")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bob"


def test_autograding_without_grader_id_fails_loudly():
    out = _autograde_kernel("from labutils import grading; grading.student_id('alice')", None)
    assert out.returncode != 0 and "LABUTILS_STUDENT_ID" in out.stderr


def _independent(x):
    return 2 * x


def test_labutils_references_finds_reference_calls():
    import labutils.model as m
    from labutils.model import count_params as cp

    def uses_alias(cfg):
        return cp(cfg)

    def uses_module(cfg):
        return m.count_params(cfg)

    def uses_inner(cfg):
        return [m.count_params(c) for c in cfg]

    assert grading.labutils_references(_independent) == []
    assert grading.labutils_references(uses_alias) == ["cp"]
    assert grading.labutils_references(uses_module) == ["m"]
    assert grading.labutils_references(uses_inner) == ["m"]
    with pytest.raises(TypeError):
        grading.labutils_references(42)
