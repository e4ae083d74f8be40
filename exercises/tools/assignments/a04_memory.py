"""Assignment 04_memory: model states under ZeRO and what fits on a GPU (chapter 4)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "04_memory"
TITLE = "Memory: model states and ZeRO"


def cells():
    return [
        md(f"""
# Assignment 04: {TITLE}

Chapter 4 (`notebooks/04_memory.ipynb`) counts the bytes a training run holds per parameter
(mixed-precision Adam: 2 bytes of bf16/fp16 weights + 2 of gradients + K = 12 of fp32 master
weights and Adam moments; Rajbhandari et al. 2020, Sec. 3.1) and how ZeRO shards them over
`dp` data-parallel ranks. Here you implement that accounting for several optimizers and size **your** run.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: model-state bytes per device under ZeRO, for several optimizers (4 points)

ZeRO's accounting (Rajbhandari et al. 2020, Sec. 3.1) writes the model states of mixed-precision
training as 2Ψ + 2Ψ + K·Ψ bytes for Ψ parameters: 16-bit weights, 16-bit gradients, and K bytes
of optimizer state per parameter (K = 12 for Adam: fp32 master weights, momentum and variance).
Chapter 4 (`labutils.memory`) handles Adam's K = 12. Here K depends on the optimizer, with the
same bookkeeping (an fp32 master copy plus the optimizer's fp32 buffers):

| `optimizer` | fp32 state per parameter | K |
|---|---|---|
| `"adam"` | master weights, momentum, variance | 12 |
| `"sgd_momentum"` | master weights, momentum | 8 |
| `"sgd"` | master weights | 4 |

Implement `zero_bytes_with_optimizer(n_params, zero_stage, dp, optimizer)`: the bytes that
**one** of `dp` data-parallel devices holds:

* stage 0 (plain data parallelism): every device holds everything;
* stage 1 shards the optimizer state, stage 2 also the gradients, stage 3 also the parameters.

A sharded buffer of n elements leaves each rank a padded shard of ⌈n / dp⌉ elements. Return an
`int`.
"""),
        solution("zero_bytes_impl", '''
def zero_bytes_with_optimizer(n_params: int, zero_stage: int, dp: int, optimizer: str) -> int:
    """Bytes of model states on one device (16-bit weights and gradients, K bytes of optimizer
    state per parameter, ZeRO stage 0-3 over dp ranks)."""
    ### BEGIN SOLUTION
    k_bytes = {"adam": 12, "sgd_momentum": 8, "sgd": 4}[optimizer]
    per_rank = (n_params + dp - 1) // dp  # the padded shard
    held = lambda sharded_from: per_rank if zero_stage >= sharded_from else n_params  # noqa: E731
    return 2 * held(3) + 2 * held(2) + k_bytes * held(1)
    ### END SOLUTION
'''),
        tests("zero_bytes_tests", 4, '''
# Public tests: the ZeRO paper's Fig. 1, Adam, a 7.5B model on 64 devices (GB = 1e9 bytes):
# 120 GB at stage 0, 31.4 GB at stage 1, 16.6 GB at stage 2, 1.9 GB at stage 3.
_fig1 = [zero_bytes_with_optimizer(7_500_000_000, _s, 64, "adam") / 1e9 for _s in range(4)]
assert isinstance(zero_bytes_with_optimizer(7_500_000_000, 0, 64, "adam"), int)
assert abs(_fig1[0] - 120.0) < 0.05 and abs(_fig1[1] - 31.4) < 0.05
assert abs(_fig1[2] - 16.6) < 0.05 and abs(_fig1[3] - 1.9) < 0.05
# SGD with momentum, no sharding: 2 + 2 + 8 = 12 bytes per parameter.
assert zero_bytes_with_optimizer(1000, 0, 8, "sgd_momentum") == 12_000
### BEGIN HIDDEN TESTS
import random as _random
from variants import zero_bytes_with_optimizer as _ref
_rng = _random.Random(7)
for _ in range(60):
    _n, _s, _dp = _rng.randint(1, 10**12), _rng.randint(0, 3), _rng.randint(1, 1024)
    for _opt in ("adam", "sgd_momentum", "sgd"):
        assert zero_bytes_with_optimizer(_n, _s, _dp, _opt) == _ref(_n, _s, _dp, _opt), \
            f"wrong bytes for some (n_params, stage, dp) with {_opt}"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: communication volume (2 points)

In the ZeRO paper's convention (Sec. 7.2), count what each device sends per step in parameter
elements, an all-reduce of Ψ elements costing 2Ψ (a reduce-scatter plus an all-gather) and a
reduce-scatter or all-gather costing Ψ:

* stages 0, 1 and 2: 2Ψ (the same as plain data parallelism);
* stage 3: 3Ψ (parameters all-gathered for the forward and again for the backward, plus a
  reduce-scatter of the gradients).

Implement `zero_comm_elements(n_params, zero_stage)`.
"""),
        solution("comm_impl", '''
def zero_comm_elements(n_params: int, zero_stage: int) -> float:
    """Elements each device communicates per step (ZeRO Sec. 7.1 convention)."""
    ### BEGIN SOLUTION
    return float(3 * n_params if zero_stage == 3 else 2 * n_params)
    ### END SOLUTION
'''),
        tests("comm_tests", 2, '''
# Public tests: ZeRO-3 costs 1.5x the traffic of plain data parallelism.
assert abs(zero_comm_elements(1000, 3) / zero_comm_elements(1000, 0) - 1.5) < 1e-12
### BEGIN HIDDEN TESTS
from labutils.memory import zero_comm_volume as _ref_comm
for _n in (1, 7, 10**9 + 3):
    for _s in range(4):
        assert abs(zero_comm_elements(_n, _s) - _ref_comm(_n, _s)) < 1e-6, "wrong volume"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your run (6 points)

Your run: a model of `PARAMS["n_params"]` parameters, trained with mixed-precision Adam on
`PARAMS["dp"]` data-parallel GPUs of type `PARAMS["gpu"]` (its memory:
`labutils.hardware.get(PARAMS["gpu"]).memory_bytes`), ZeRO stage `PARAMS["zero_stage"]`.
Model states only (no activations). GB = 1e9 bytes.

* `answer_bytes_stage0_gb`: GB of model states per GPU without ZeRO (stage 0);
* `answer_bytes_sharded_gb`: GB per GPU at your ZeRO stage with your `dp` (within 2 %);
* `answer_min_dp_zero3`: the smallest power of two `dp` (1, 2, 4, ...) at which the model
  states fit in one GPU's memory with ZeRO-3 (exact).
"""),
        solution("napkin", '''
import labutils.hardware

### BEGIN SOLUTION
_n, _mem = int(PARAMS["n_params"]), labutils.hardware.get(PARAMS["gpu"]).memory_bytes
answer_bytes_stage0_gb = 16 * _n / 1e9
_shard = -(-_n // PARAMS["dp"])
_stage = PARAMS["zero_stage"]
answer_bytes_sharded_gb = (2 * (_shard if _stage >= 3 else _n) + 2 * (_shard if _stage >= 2 else _n)
                           + 12 * _shard) / 1e9
answer_min_dp_zero3 = 1
while 16 * -(-_n // answer_min_dp_zero3) > _mem:
    answer_min_dp_zero3 *= 2
### END SOLUTION
print(f"{answer_bytes_stage0_gb:.1f} GB without ZeRO, {answer_bytes_sharded_gb:.2f} GB at stage "
      f"{PARAMS['zero_stage']}; ZeRO-3 fits from dp = {answer_min_dp_zero3}")
'''),
        tests("napkin_stage0", 1, '''
assert isinstance(answer_bytes_stage0_gb, (int, float)) and answer_bytes_stage0_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "bytes_stage0_gb", answer_bytes_stage0_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_sharded", 2, '''
assert 0 < answer_bytes_sharded_gb <= answer_bytes_stage0_gb
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "bytes_sharded_gb", answer_bytes_sharded_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_min_dp", 3, '''
assert isinstance(answer_min_dp_zero3, int) and answer_min_dp_zero3 >= 1
assert answer_min_dp_zero3 & (answer_min_dp_zero3 - 1) == 0, "a power of two"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "min_dp_zero3", answer_min_dp_zero3, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
