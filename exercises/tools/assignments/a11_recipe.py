"""Assignment 11_recipe: the WSD schedule, LSH's S-curve, and a training recipe's napkin math
(chapter 11)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "11_recipe"
TITLE = "The training recipe: LR schedules, deduplication, objectives"


def cells():
    return [
        md(f"""
# Assignment 11: {TITLE}

Chapter 11 (`notebooks/11_recipe.ipynb`) trains the tiny GPT with a cosine and a
warmup-stable-decay (WSD) schedule, deduplicates a synthetic corpus with MinHash and LSH, and
builds CLM, MLM and span-corruption examples. Here you write a WSD variant with a cosine cooldown and the LSH
candidate probability yourself, then do the napkin math of **your** recipe.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: a warmup-stable-decay schedule with a cosine cooldown (4 points)

Chapter 11's WSD schedule (`labutils.schedules.wsd`) warms up to `peak_lr · (step + 1) /
warmup_steps` and cools down linearly or as 1 − √progress. Here you write a **variant** that
the package does not hold: a warm-up that **starts from 0** and a **half-cosine cooldown**.

Implement `wsd_cosine(step, total_steps, peak_lr, warmup_steps, decay_steps, min_lr_ratio=0.0)`,
the learning rate at the 0-based optimiser step `step` (0 ≤ step < total_steps):

1. **warm-up** (`step < warmup_steps`): `peak_lr · step / warmup_steps` (0 at step 0);
2. **stable** (up to the cooldown): `peak_lr`;
3. **cooldown**, the last `decay_steps` steps, starting at `decay_start = total_steps − decay_steps`:
   with `progress = (step − decay_start + 1) / decay_steps` and `floor = peak_lr · min_lr_ratio`,
   the LR is `floor + (peak_lr − floor) · (1 + cos(π · progress)) / 2`.

(The last step lands exactly on the floor.) You may assume warm-up and cooldown do not overlap.
"""),
        solution("wsd_impl", '''
def wsd_cosine(step, total_steps, peak_lr, warmup_steps, decay_steps, min_lr_ratio=0.0):
    """Warm-up from 0, stable, then a half-cosine cooldown to peak_lr * min_lr_ratio."""
    ### BEGIN SOLUTION
    lowest = min_lr_ratio * peak_lr
    cooldown_from = total_steps - decay_steps
    if step >= cooldown_from:
        done = (step + 1 - cooldown_from) / decay_steps  # 1/decay_steps ... 1
        return lowest + 0.5 * (peak_lr - lowest) * (1.0 + math.cos(math.pi * done))
    return peak_lr * min(1.0, step / warmup_steps) if warmup_steps else peak_lr
    ### END SOLUTION
'''),
        tests("wsd_tests", 4, '''
# Public tests: the warm-up starts at 0; the stable phase; the cooldown's middle and end.
assert wsd_cosine(0, 100, 1.0, 10, 20) == 0.0
assert abs(wsd_cosine(5, 100, 1.0, 10, 20) - 0.5) < 1e-12
assert wsd_cosine(50, 100, 1.0, 10, 20) == 1.0
assert abs(wsd_cosine(89, 100, 1.0, 10, 20) - 0.5) < 1e-12, "half-way through the cooldown: (1 + cos(pi/2))/2"
assert abs(wsd_cosine(99, 100, 1.0, 10, 20, min_lr_ratio=0.1) - 0.1) < 1e-12
### BEGIN HIDDEN TESTS
import random as _random
from variants import wsd_cosine as _ref_wsd
_rng = _random.Random(111)
_cases = [(100, 10, 20), (1000, 0, 500), (37, 3, 34), (10, 1, 1), (64, 0, 0)]
_cases += [(_t, _rng.randint(0, _t // 3), _rng.randint(1, _t // 2)) for _t in (_rng.randint(6, 400) for _ in range(6))]
for _total, _warm, _decay in _cases:
    for _floor in (0.0, 0.1, _rng.uniform(0, 1)):
        _peak = 10 ** _rng.uniform(-5, -2)
        for _step in range(_total):
            _want = _ref_wsd(_step, _total, _peak, _warm, _decay, _floor)
            _got = wsd_cosine(_step, _total, _peak, _warm, _decay, _floor)
            assert abs(_got - _want) <= 1e-9 * _peak, f"wrong LR at step {_step} of {_total} (warm-up {_warm}, cooldown {_decay})"
            if _floor == 0.0 and _step in (0, _total // 2, _total - 1):
                assert abs(wsd_cosine(_step, _total, _peak, _warm, _decay) - _want) <= 1e-9 * _peak, "min_lr_ratio defaults to 0"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: the LSH S-curve (2 points)

MinHash-LSH splits a signature into `b` bands of `r` rows and makes two documents a candidate
pair if they agree on at least one whole band. Two documents of Jaccard similarity `s` agree on
one signature slot with probability `s` (Broder 1997), so on a band with probability `s^r`.

Implement `candidate_probability(s, b, r)`: the probability that they become a candidate pair.
"""),
        solution("lsh_impl", '''
def candidate_probability(s, b, r):
    """P(two documents of Jaccard similarity s share at least one of b bands of r rows)."""
    ### BEGIN SOLUTION
    return 1 - (1 - s**r) ** b
    ### END SOLUTION
'''),
        tests("lsh_tests", 2, '''
# Public tests: identical documents always collide, disjoint ones never; one band of one row is s.
assert candidate_probability(1.0, 14, 8) == 1.0
assert candidate_probability(0.0, 14, 8) == 0.0
assert abs(candidate_probability(0.3, 1, 1) - 0.3) < 1e-12
### BEGIN HIDDEN TESTS
from labutils.data_quality import lsh_candidate_probability as _ref_p
for _b in (1, 5, 14, 20, 50):
    for _r in (1, 2, 8, 13):
        for _s in (0.05, 0.3, 0.5, 0.72, 0.75, 0.9, 0.99):
            assert abs(candidate_probability(_s, _b, _r) - _ref_p(_s, _b, _r)) < 1e-12, f"wrong for b={_b}, r={_r}, s={_s}"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your recipe (6 points)

Your run trains for `PARAMS["total_steps"]` steps with **chapter 11's** WSD schedule
(`labutils.schedules.wsd`, not Part 1's variant): peak LR `PARAMS["peak_lr"]`, a warm-up of
`PARAMS["warmup_steps"]` steps reaching `peak_lr · (step + 1) / warmup_steps`, then `peak_lr`, then a
cooldown over the last `PARAMS["decay_steps"]` steps down to 0 (min_lr_ratio = 0) of shape
`PARAMS["cooldown"]`: with `progress` as in Part 1, the LR is `peak_lr · (1 − progress)` for
`"linear"` and `peak_lr · (1 − sqrt(progress))` for `"1-sqrt"`.
Your deduplication uses MinHash-LSH with `PARAMS["bands"]` bands of `PARAMS["rows"]` rows. Your
encoder-decoder baseline uses T5's span-corruption objective (Raffel et al. 2020, Sec. 3.3.4; T5's
Sec. 3.1.4 baseline corrupts tokens i.i.d. instead) on sequences of `PARAMS["seq_len"]` tokens with
noise density `PARAMS["noise_density"]` and mean span length `PARAMS["mean_span_length"]`.
Answers within 2 % get full marks.

* `answer_lr`: the learning rate at step `PARAMS["step"]`;
* `answer_jaccard_threshold`: the similarity (1/b)^(1/r) where your S-curve is steepest;
* `answer_span_loss_tokens`: the number of target tokens that carry a loss for one sequence
  under span corruption. As in T5's span corruption: `n = round(seq_len · noise_density)` corrupted tokens in
  `round(n / mean_span_length)` spans; the target holds one sentinel per span followed by that
  span's tokens, then one final sentinel.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_T, _D, _s = PARAMS["total_steps"], PARAMS["decay_steps"], PARAMS["step"]
_progress = (_s - (_T - _D) + 1) / _D
_shape = 1 - _progress if PARAMS["cooldown"] == "linear" else 1 - math.sqrt(_progress)
answer_lr = PARAMS["peak_lr"] * _shape
answer_jaccard_threshold = (1 / PARAMS["bands"]) ** (1 / PARAMS["rows"])
_n = round(PARAMS["seq_len"] * PARAMS["noise_density"])
answer_span_loss_tokens = _n + round(_n / PARAMS["mean_span_length"]) + 1
### END SOLUTION
print(f"LR {answer_lr:.3g}, LSH threshold {answer_jaccard_threshold:.3f}, "
      f"span-corruption loss tokens {answer_span_loss_tokens}")
'''),
        tests("napkin_lr", 2, '''
assert isinstance(answer_lr, (int, float)) and 0 <= answer_lr <= PARAMS["peak_lr"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "lr", answer_lr, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_threshold", 2, '''
assert isinstance(answer_jaccard_threshold, (int, float)) and 0 < answer_jaccard_threshold < 1
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "jaccard_threshold", answer_jaccard_threshold, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_span", 2, '''
assert isinstance(answer_span_loss_tokens, (int, float)) and 0 < answer_span_loss_tokens < PARAMS["seq_len"]
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "span_loss_tokens", answer_span_loss_tokens, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
