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
builds CLM, MLM and span-corruption examples. Here you write the WSD schedule and the LSH
candidate probability yourself, then do the napkin math of **your** recipe.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: the warmup-stable-decay schedule (4 points)

Implement `wsd(step, total_steps, peak_lr, warmup_steps, decay_steps, min_lr_ratio=0.0,
cooldown="linear")`, the learning rate at the 0-based optimiser step `step`
(0 ≤ step < total_steps):

1. **warm-up** (`step < warmup_steps`): `peak_lr · (step + 1) / warmup_steps`;
2. **stable** (up to the cooldown): `peak_lr`;
3. **cooldown**, the last `decay_steps` steps, starting at `decay_start = total_steps − decay_steps`:
   with `progress = (step − decay_start + 1) / decay_steps` and `floor = peak_lr · min_lr_ratio`,
   the LR is `floor + (peak_lr − floor) · (1 − progress)` for `cooldown="linear"` and
   `floor + (peak_lr − floor) · (1 − sqrt(progress))` for `cooldown="1-sqrt"`.

(The last step lands exactly on the floor.) You may assume warm-up and cooldown do not overlap.
"""),
        solution("wsd_impl", '''
def wsd(step, total_steps, peak_lr, warmup_steps, decay_steps, min_lr_ratio=0.0, cooldown="linear"):
    """Warmup-stable-decay learning rate at `step`."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return peak_lr
    progress = (step - decay_start + 1) / decay_steps
    shape = 1 - progress if cooldown == "linear" else 1 - math.sqrt(progress)
    floor = peak_lr * min_lr_ratio
    return floor + (peak_lr - floor) * shape
    ### END SOLUTION
'''),
        tests("wsd_tests", 4, '''
# Public tests: warm-up, the stable phase, the end of a linear cooldown.
assert abs(wsd(0, 100, 1.0, 10, 20) - 0.1) < 1e-12
assert wsd(50, 100, 1.0, 10, 20) == 1.0
assert abs(wsd(99, 100, 1.0, 10, 20, min_lr_ratio=0.1) - 0.1) < 1e-12
### BEGIN HIDDEN TESTS
from labutils.schedules import wsd as _ref_wsd
for _total, _warm, _decay in ((100, 10, 20), (1000, 0, 500), (37, 3, 34), (10, 1, 1)):
    for _cool in ("linear", "1-sqrt"):
        for _floor in (0.0, 0.1):
            for _step in range(_total):
                _want = _ref_wsd(_step, _total, peak_lr=3e-3, warmup_steps=_warm,
                                 decay_steps=_decay, min_lr_ratio=_floor, cooldown=_cool)
                _got = wsd(_step, _total, 3e-3, _warm, _decay, _floor, _cool)
                assert abs(_got - _want) <= 1e-9 * 3e-3, f"wrong LR at step {_step} of {_total} ({_cool})"
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

Your run trains for `PARAMS["total_steps"]` steps with the WSD schedule of Part 1: peak LR
`PARAMS["peak_lr"]`, `PARAMS["warmup_steps"]` warm-up steps, a cooldown of
`PARAMS["decay_steps"]` steps of shape `PARAMS["cooldown"]` down to 0 (min_lr_ratio = 0).
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
