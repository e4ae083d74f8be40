"""Assignment 03_throughput: throughput, MFU and scalability (chapter 3)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "03_throughput"
TITLE = "Throughput, MFU and scalability"


def cells():
    return [
        md(f"""
# Assignment 03: {TITLE}

Chapter 3 (`notebooks/03_throughput.ipynb`) defines training throughput, Model FLOPs
Utilization MFU = 6·N·T / (F·K), and strong (Amdahl) and weak (Gustafson) scaling. Here you
implement MFU, Amdahl's law and its inverse, then judge **your** training run.
{RULES}
Points: Part 1 (3), Part 2 (3), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: Model FLOPs Utilization (3 points)

Implement `mfu(n_params, tokens_per_s, n_devices, peak_flops_per_device)`: the fraction (not a
percent) of the cluster's peak FLOP/s that the model's 6·N FLOPs per token account for,
MFU = 6·N·T / (F·K) with T tokens/s, F the peak FLOP/s of one device and K devices.
"""),
        solution("mfu_impl", '''
def mfu(n_params, tokens_per_s, n_devices, peak_flops_per_device):
    """Model FLOPs Utilization, a fraction."""
    ### BEGIN SOLUTION
    return 6.0 * n_params * tokens_per_s / (n_devices * peak_flops_per_device)
    ### END SOLUTION
'''),
        tests("mfu_tests", 3, '''
# Public test: the lecture's worked example, a 7B model on 256 A100s (312 TFLOP/s bf16) with a
# batch of 2048 × 4096 tokens per 12.7 s step, runs at about 35 % MFU.
_tps = 2048 * 4096 / 12.7
assert abs(mfu(7e9, _tps, 256, 312e12) - 0.347) < 0.005
assert abs(mfu(1.0, 1.0, 1, 6.0) - 1.0) < 1e-12
### BEGIN HIDDEN TESTS
import random as _random
from labutils.throughput import mfu as _ref_mfu
_rng = _random.Random(5)
for _ in range(30):
    _n, _dev, _peak = 10 ** _rng.uniform(6, 12), _rng.randint(1, 4096), 10 ** _rng.uniform(12, 15)
    _tps = _rng.uniform(0.01, 0.99) * _dev * _peak / (6 * _n)  # inputs of an MFU below 1
    _args = (_n, _tps, _dev, _peak)
    _ref = _ref_mfu(*_args)
    assert abs(mfu(*_args) - _ref) <= 1e-9 * _ref, "wrong MFU"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: strong scaling, forwards and backwards (3 points)

With a serial fraction s (the share of the work that cannot be parallelised) and n processors,
Amdahl's law (fixed problem, strong scaling) gives speedup = 1 / (s + (1 − s)/n).

In practice you *measure* a speedup S on n processors and ask which serial fraction explains
it; a value that grows with n points at overheads that grow with n (communication,
synchronisation) rather than a fixed serial part. The package does not invert the law.

Implement `amdahl_speedup(serial_fraction, n)` and its inverse
`serial_fraction_from_speedup(speedup, n)`: the s for which Amdahl's law gives `speedup` on
n > 1 processors.
"""),
        solution("scaling_impl", '''
def amdahl_speedup(serial_fraction, n):
    """Strong-scaling speedup on n processors."""
    ### BEGIN SOLUTION
    parallel_time = (1.0 - serial_fraction) / n
    return 1.0 / (serial_fraction + parallel_time)
    ### END SOLUTION


def serial_fraction_from_speedup(speedup, n):
    """The serial fraction s for which Amdahl's law gives `speedup` on n > 1 processors."""
    ### BEGIN SOLUTION
    return (1.0 / speedup - 1.0 / n) / (1.0 - 1.0 / n)
    ### END SOLUTION
'''),
        tests("scaling_tests", 3, '''
# Public tests: no serial work scales linearly; all serial work does not scale at all.
assert abs(amdahl_speedup(0.0, 64) - 64) < 1e-9 and abs(amdahl_speedup(1.0, 64) - 1) < 1e-9
# The lecture: 0.1 % serial work caps 1000 processors at about a 500x speedup.
assert abs(amdahl_speedup(0.001, 1000) - 500.25) < 0.1
# Backwards: a perfect speedup means no serial work, none at all means all of it; 2x on 3 is 1/4.
assert abs(serial_fraction_from_speedup(64, 64)) < 1e-12 and abs(serial_fraction_from_speedup(1, 64) - 1) < 1e-12
assert abs(serial_fraction_from_speedup(2, 3) - 0.25) < 1e-12
### BEGIN HIDDEN TESTS
import random as _random
from labutils.throughput import amdahl_speedup as _ref_a
from variants import serial_fraction_from_speedup as _ref_s
_rng = _random.Random(6)
for _ in range(40):
    _s, _n = _rng.random(), _rng.randint(2, 100000)
    assert abs(amdahl_speedup(_s, _n) - _ref_a(_s, _n)) <= 1e-9 * _ref_a(_s, _n), "wrong Amdahl speedup"
    _S = _rng.uniform(1.0, _n)
    assert abs(serial_fraction_from_speedup(_S, _n) - _ref_s(_S, _n)) <= 1e-9, "wrong serial fraction"
    assert abs(serial_fraction_from_speedup(_ref_a(_s, _n), _n) - _s) <= 1e-7, "not the inverse of Amdahl's law"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your training run (6 points)

Your run (printed by the setup cell): a model of `PARAMS["n_params"]` parameters trains on
`PARAMS["n_gpus"]` GPUs of type `PARAMS["gpu"]`, with a global batch of
`PARAMS["global_batch"]` sequences of `PARAMS["seq_len"]` tokens, and one step takes
`PARAMS["step_time_s"]` seconds. Take the GPU's dense **bf16** peak from
`labutils.hardware.get(PARAMS["gpu"]).peak_flops("bf16")` and count 6·N FLOPs per token (no
attention term). Answers within 2 % get full marks.

* `answer_tokens_per_s`: the cluster's throughput in tokens/s;
* `answer_mfu`: its MFU (a fraction);
* `answer_train_days`: days to train on `PARAMS["n_tokens"]` tokens at that throughput;
* `answer_amdahl_speedup`: the strong-scaling speedup on `PARAMS["n_processors"]` processors of
  a program whose serial fraction is `PARAMS["serial_fraction"]`.
"""),
        solution("napkin", '''
import labutils.hardware

### BEGIN SOLUTION
_peak = labutils.hardware.get(PARAMS["gpu"]).peak_flops("bf16")
answer_tokens_per_s = PARAMS["global_batch"] * PARAMS["seq_len"] / PARAMS["step_time_s"]
answer_mfu = 6 * PARAMS["n_params"] * answer_tokens_per_s / (PARAMS["n_gpus"] * _peak)
answer_train_days = PARAMS["n_tokens"] / answer_tokens_per_s / 86400
_s, _n = PARAMS["serial_fraction"], PARAMS["n_processors"]
answer_amdahl_speedup = 1 / (_s + (1 - _s) / _n)
### END SOLUTION
print(f"{answer_tokens_per_s:.3g} tokens/s, MFU {answer_mfu:.1%}, {answer_train_days:.1f} days; "
      f"Amdahl speedup {answer_amdahl_speedup:.1f}")
'''),
        tests("napkin_tokens_per_s", 1, '''
assert isinstance(answer_tokens_per_s, (int, float)) and answer_tokens_per_s > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "tokens_per_s", answer_tokens_per_s, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_mfu", 2, '''
assert 0 < answer_mfu < 1, "MFU is a fraction between 0 and 1"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "mfu", answer_mfu, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_train_days", 1, '''
assert isinstance(answer_train_days, (int, float)) and answer_train_days > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "train_days", answer_train_days, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_amdahl", 2, '''
assert 1 <= answer_amdahl_speedup <= PARAMS["n_processors"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "amdahl_speedup", answer_amdahl_speedup, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
