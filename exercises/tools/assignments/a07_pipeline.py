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
ranks and runs the AFAB (GPipe) and 1F1B schedules. Here you time the 1F1B and AFAB schedules
when stages cost different amounts (which the chapter's simulator does not do), and estimate the step time and activation memory of
**your** pipeline.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: 1F1B with stages of unequal cost (4 points)

A pipeline has `p` stages (0 … p−1) and a step has `m` micro-batches (0 … m−1). In the 1F1B
schedule (PipeDream-Flush), stage `s`:

1. **warm-up**: runs the forward passes of the first `min(p − s − 1, m)` micro-batches;
2. **steady state**: then alternates one forward (the next micro-batch not yet started) and one
   backward (the oldest micro-batch not yet finished), until every forward has run;
3. **cool-down**: runs the backward passes that remain, oldest first.

Chapter 7 simulates this schedule when every stage costs the same. Real stages rarely do (the
first holds the embedding, the last the LM head and the loss). Implement
`one_f_one_b_step_time(t_f, t_b, m)`: `t_f[s]` and `t_b[s]` are the seconds one micro-batch's
forward and backward take on stage s (p = `len(t_f)`). Every stage runs its ops in the 1F1B order
above, each op as soon as the stage is free **and** its input is ready: F(k) on stage s needs
F(k) on stage s − 1 finished (stage 0: nothing), B(k) on stage s needs B(k) on stage s + 1
finished (the last stage: its own F(k)). Sending costs nothing. Return the step's makespan in
seconds, from time 0 to the end of the last op. (Hint: simulate.)
"""),
        solution("schedule_impl", '''
def one_f_one_b_step_time(t_f, t_b, m):
    """Seconds from the first op to the last of one 1F1B step with per-stage times."""
    ### BEGIN SOLUTION
    p = len(t_f)
    queues = []
    for s in range(p):
        n_warm = min(p - s - 1, m)
        order = [("F", k) for k in range(n_warm)]
        for j in range(m - n_warm):
            order += [("F", n_warm + j), ("B", j)]
        queues.append(order + [("B", k) for k in range(m - n_warm, m)])
    done = {}  # (stage, kind, micro-batch) -> finish time
    busy_until = [0.0] * p
    pos = [0] * p
    while any(pos[s] < len(queues[s]) for s in range(p)):
        for s in range(p):
            while pos[s] < len(queues[s]):
                kind, k = queues[s][pos[s]]
                need = (s - 1, "F", k) if kind == "F" else ((s + 1, "B", k) if s + 1 < p else (s, "F", k))
                if kind == "F" and s == 0:
                    ready = 0.0
                elif need in done:
                    ready = done[need]
                else:
                    break
                begin = max(ready, busy_until[s])
                busy_until[s] = begin + (t_f[s] if kind == "F" else t_b[s])
                done[(s, kind, k)] = busy_until[s]
                pos[s] += 1
    return max(done.values())
    ### END SOLUTION
'''),
        tests("schedule_tests", 4, '''
# Public tests. Equal stages: (m + p − 1)·(t_f + t_b) (Narayanan et al. 2021, Sec. 2.2).
assert abs(one_f_one_b_step_time([1.0] * 4, [2.0] * 4, 8) - (8 + 4 - 1) * 3.0) < 1e-9
assert abs(one_f_one_b_step_time([1.0], [2.0], 5) - 15.0) < 1e-9, "one stage: m·(t_f + t_b)"
# Two stages, stage 1 twice as slow, 2 micro-batches, worked by hand:
# F0@0 [0,1] F0@1 [1,3] B0@1 [3,7] F1@0 [1,2] F1@1 [7,9] B0@0 [7,9] B1@1 [9,13] B1@0 [13,15]
assert abs(one_f_one_b_step_time([1.0, 2.0], [2.0, 4.0], 2) - 15.0) < 1e-9
### BEGIN HIDDEN TESTS
import random as _random
from variants import simulate_step_time_s as _ref_sim
_rng = _random.Random(71)
for _p in (1, 2, 3, 4, 6, 8):
    for _m in (1, 2, _p, 2 * _p + 1, 12):
        _tf = [_rng.uniform(0.5, 3.0) for _ in range(_p)]
        _tb = [_rng.uniform(1.0, 6.0) for _ in range(_p)]
        _want = _ref_sim("1f1b", _tf, _tb, _m)
        _got = one_f_one_b_step_time(_tf, _tb, _m)
        assert abs(_got - _want) <= 1e-9 * _want, f"wrong makespan for p={_p}, m={_m}"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: all-forward-all-backward with unequal stages, in closed form (2 points)

In the AFAB (GPipe) schedule every stage runs the m forwards, then the m backwards, both in
micro-batch order, with the dependencies of Part 1. With equal stages its step takes
(m + p − 1)·(t_f + t_b). With unequal stages the slowest stage sets the pace: a micro-batch can
enter a stage only once that stage has finished the previous one.

Implement `afab_step_time(t_f, t_b, m)` **without simulating**: the forward phase ends on the
last stage after Σ_s t_f[s] + (m − 1)·max_s t_f[s] (the first micro-batch crosses every stage,
the other m − 1 queue behind the slowest one), and the backward phase, which starts there, adds
the same expression in t_b. Return the makespan in seconds.
"""),
        solution("bubble_impl", '''
def afab_step_time(t_f, t_b, m):
    """Seconds of one AFAB step with per-stage forward/backward times (closed form)."""
    ### BEGIN SOLUTION
    forward_phase = sum(t_f) + (m - 1) * max(t_f)
    backward_phase = sum(t_b) + (m - 1) * max(t_b)
    return forward_phase + backward_phase
    ### END SOLUTION
'''),
        tests("bubble_tests", 2, '''
# Public tests: equal stages give (m + p − 1)·(t_f + t_b); one slow stage sets the pace.
assert abs(afab_step_time([1.0] * 4, [2.0] * 4, 8) - 33.0) < 1e-9
assert abs(afab_step_time([1.0, 3.0], [2.0, 2.0], 3) - (4.0 + 2 * 3.0 + 4.0 + 2 * 2.0)) < 1e-9
### BEGIN HIDDEN TESTS
import random as _random
from variants import simulate_step_time_s as _ref_sim
_rng = _random.Random(72)
for _p in (1, 2, 3, 5, 8):
    for _m in (1, 2, 7, 16):
        _tf = [_rng.uniform(0.5, 3.0) for _ in range(_p)]
        _tb = [_rng.uniform(1.0, 6.0) for _ in range(_p)]
        _want = _ref_sim("afab", _tf, _tb, _m)
        assert abs(afab_step_time(_tf, _tb, _m) - _want) <= 1e-9 * _want, f"wrong AFAB time for p={_p}, m={_m}"
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

* `answer_bubble_interleaved`: the bubble fraction of the interleaved schedule with
  `PARAMS["v"]` chunks per rank, as bubble time over ideal compute time: (p − 1)/(v·m)
  (Narayanan et al. 2021, Sec. 2.2);
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
