"""Assignment 07_pipeline: the 1F1B schedule, the bubble, and a pipeline's napkin math (chapter 7)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "07_pipeline"
TITLE = "Pipeline parallelism: schedules and the bubble"


def cells():
    return [
        md(f"""
# Assignment 07: {TITLE}

Chapter 7 (`notebooks/07_pipeline.ipynb`) cuts the GPT into stages on real torch.distributed
ranks and runs the AFAB (GPipe) and 1F1B schedules. Here you write the 1F1B schedule of one
stage yourself, the bubble formula, and estimate the step time and activation memory of
**your** pipeline.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: the 1F1B schedule of one stage (4 points)

A pipeline has `p` stages (0 … p−1) and a step has `m` micro-batches (0 … m−1). In the 1F1B
schedule (PipeDream-Flush), stage `s`:

1. **warm-up**: runs the forward passes of the first `min(p − s − 1, m)` micro-batches;
2. **steady state**: then alternates one forward (the next micro-batch not yet started) and one
   backward (the oldest micro-batch not yet finished), until every forward has run;
3. **cool-down**: runs the backward passes that remain, oldest first.

Implement `one_f_one_b(p, m, s)`: return stage s's ops in order, as a list of tuples
`("F", k)` or `("B", k)`.
"""),
        solution("schedule_impl", '''
def one_f_one_b(p, m, s):
    """Stage s's 1F1B op order: a list of ("F" | "B", micro-batch)."""
    ### BEGIN SOLUTION
    warmup = min(p - s - 1, m)
    ops = [("F", k) for k in range(warmup)]
    for i in range(m - warmup):
        ops += [("F", warmup + i), ("B", i)]
    ops += [("B", k) for k in range(m - warmup, m)]
    return ops
    ### END SOLUTION
'''),
        tests("schedule_tests", 4, '''
# Public tests: the last stage alternates at once; stage 0 of 4 warms up with 3 forwards.
assert one_f_one_b(2, 3, 1) == [("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2)]
assert one_f_one_b(4, 6, 0)[:5] == [("F", 0), ("F", 1), ("F", 2), ("F", 3), ("B", 0)]
### BEGIN HIDDEN TESTS
from labutils.parallel.pipeline_schedule import one_f_one_b_ops as _ref_ops
for _p in range(1, 9):
    for _m in (1, 2, 3, _p, 2 * _p + 1, 16):
        for _s in range(_p):
            _want = [(o.kind, o.microbatch) for o in _ref_ops(_p, _m, _s)]
            assert [tuple(x) for x in one_f_one_b(_p, _m, _s)] == _want, f"wrong order for p={_p}, m={_m}, s={_s}"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: the bubble (2 points)

With `p` stages and `m` micro-batches, AFAB and 1F1B leave every stage idle for (p − 1)
forward-and-backward slots per step: the **bubble**. Narayanan et al. (2021, Sec. 2.2) measure it
relative to the ideal compute time m·(t_f + t_b): bubble fraction = (p − 1)/m. The interleaved
schedule, with `v` model chunks per rank, divides it by v: (p − 1)/(v·m).

Implement `bubble_fraction(p, m, v=1)` (the ratio definition above).
"""),
        solution("bubble_impl", '''
def bubble_fraction(p, m, v=1):
    """Bubble time over ideal compute time for p stages, m micro-batches, v chunks per rank."""
    ### BEGIN SOLUTION
    return (p - 1) / (v * m)
    ### END SOLUTION
'''),
        tests("bubble_tests", 2, '''
# Public tests: one stage has no bubble; GPipe's naive case (m = 1) idles p - 1 slots.
assert bubble_fraction(1, 8) == 0
assert abs(bubble_fraction(4, 1) - 3) < 1e-12
### BEGIN HIDDEN TESTS
from labutils.parallel.pipeline_schedule import bubble_fraction as _ref_bubble
for _p in (1, 2, 4, 8, 16, 64):
    for _m in (1, 3, 8, 64, 1000):
        for _v in (1, 2, 3, 4):
            assert abs(bubble_fraction(_p, _m, _v) - _ref_bubble(_p, _m, _v)) < 1e-12, "wrong bubble"
            if _v == 1:
                assert abs(bubble_fraction(_p, _m) - _ref_bubble(_p, _m)) < 1e-12, "v defaults to 1"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your pipeline (6 points)

Your model has `PARAMS["n_layers"]` layers of width `PARAMS["d_model"]` with
`PARAMS["n_heads"]` heads, trained on sequences of `PARAMS["seq_len"]` tokens. It is cut into
`PARAMS["p"]` pipeline stages of equal numbers of layers, and each step runs `PARAMS["m"]`
micro-batches of `PARAMS["micro_batch"]` sequences. One micro-batch's forward pass through one
stage takes `PARAMS["t_f_s"]` seconds, and its backward pass twice as long. Ignore the time
to send activations between stages. GB = 1e9 bytes; answers within 2 % get full marks.

* `answer_bubble_interleaved`: the bubble fraction (ratio definition, Part 2) of the
  interleaved schedule with `PARAMS["v"]` chunks per rank;
* `answer_step_time_s`: the time of one training step with the 1F1B schedule, in seconds;
* `answer_stage0_activations_gb`: the peak activation memory of stage 0 under 1F1B, in GB.
  Stage 0 holds the activations of as many micro-batches as 1F1B keeps in flight there; per layer
  and micro-batch, use Korthikanti et al. (2022) Eq. 1 for 16-bit activations with dropout,
  sbh·(34 + 5as/h) bytes (s = sequence length, b = micro-batch, h = width, a = heads).
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_p, _m, _v = PARAMS["p"], PARAMS["m"], PARAMS["v"]
_s, _b, _h, _a = PARAMS["seq_len"], PARAMS["micro_batch"], PARAMS["d_model"], PARAMS["n_heads"]
answer_bubble_interleaved = (_p - 1) / (_v * _m)
answer_step_time_s = (_m + _p - 1) * 3 * PARAMS["t_f_s"]
_per_layer = _s * _b * _h * (34 + 5 * _a * _s / _h)
answer_stage0_activations_gb = min(_p, _m) * (PARAMS["n_layers"] // _p) * _per_layer / 1e9
### END SOLUTION
print(f"interleaved bubble {answer_bubble_interleaved:.1%}, 1F1B step {answer_step_time_s:.3g} s, "
      f"stage 0 activations {answer_stage0_activations_gb:.1f} GB")
'''),
        tests("napkin_bubble", 1, '''
assert isinstance(answer_bubble_interleaved, (int, float)) and 0 <= answer_bubble_interleaved
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "bubble_interleaved", answer_bubble_interleaved, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_step", 2, '''
assert isinstance(answer_step_time_s, (int, float)) and answer_step_time_s > 0
assert answer_step_time_s >= 3 * PARAMS["m"] * PARAMS["t_f_s"] * 0.98, "a step cannot beat the ideal m·(t_f + t_b)"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "step_time_s", answer_step_time_s, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_memory", 3, '''
assert isinstance(answer_stage0_activations_gb, (int, float)) and answer_stage0_activations_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "stage0_activations_gb", answer_stage0_activations_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
