"""Assignment 08_context_parallel: online softmax, zigzag load balancing, ring costs (chapter 8)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "08_context_parallel"
TITLE = "Context parallelism: ring attention"


def cells():
    return [
        md(f"""
# Assignment 08: {TITLE}

Chapter 8 (`notebooks/08_context_parallel.ipynb`) computes attention block by block, merges the
blocks with the online-softmax rule, and runs ring attention on real torch.distributed ranks.
Here you write the merge rule yourself, price the causal work of a striped layout the chapter
does not use, and price the ring for **your** run.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT, extra_imports="import numpy as np\n"),
        md("""
## Part 1: merging two partial attention results (4 points)

Split the keys of a query into two disjoint sets A and B. For a set X, a **partial result** is
`(m, l, o)`: `m` the largest score of the query against the keys of X, `l = Σ exp(score − m)`
over those keys, and `o` the softmax-weighted average of their values,
`o = Σ exp(score − m)·v / l`. Arrays have shapes `m, l: (n,)` and `o: (n, d)` for n queries.
A query that sees no key of a set (all masked) has `m = -inf`, `l = 0`, `o = 0`.

Implement `merge(m1, l1, o1, m2, l2, o2)` returning the partial result `(m, l, o)` of the union:
take the common maximum m = max(m1, m2), rescale each side's sum to it, and average the two
`o`s with those weights. Your function must return exactly the attention output over all keys,
must work when one side (or both) is empty, and must not produce `nan` (hint: `np.where`).
"""),
        solution("merge_impl", '''
def merge(m1, l1, o1, m2, l2, o2):
    """Merge two partial attention results (online-softmax rule); returns (m, l, o)."""
    ### BEGIN SOLUTION
    m = np.maximum(m1, m2)
    m_safe = np.where(np.isinf(m), 0.0, m)
    w1 = l1 * np.exp(m1 - m_safe)  # an empty side: exp(-inf) = 0
    w2 = l2 * np.exp(m2 - m_safe)
    l = w1 + w2
    denom = np.where(l == 0, 1.0, l)
    o = (w1[:, None] * o1 + w2[:, None] * o2) / denom[:, None]
    return m, l, o
    ### END SOLUTION
'''),
        tests("merge_tests", 4, '''
# Public tests: two blocks of keys, merged, equal plain softmax attention.
def _partial(scores, values):
    m = scores.max(axis=1)
    p = np.exp(scores - m[:, None])
    return m, p.sum(axis=1), p @ values / p.sum(axis=1)[:, None]

_rng = np.random.default_rng(0)
_s, _v = _rng.standard_normal((3, 6)), _rng.standard_normal((6, 2))
_m, _l, _o = merge(*_partial(_s[:, :2], _v[:2]), *_partial(_s[:, 2:], _v[2:]))
_p = np.exp(_s - _s.max(axis=1, keepdims=True))
assert np.allclose(_o, (_p / _p.sum(axis=1, keepdims=True)) @ _v), "wrong merged output"
assert np.allclose(_m, _s.max(axis=1)) and np.allclose(_l, _p.sum(axis=1))
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(81)
for _trial in range(20):
    _n, _k, _d = _rng.integers(1, 6), _rng.integers(2, 12), _rng.integers(1, 5)
    _s = _rng.standard_normal((_n, _k)) * _rng.choice([1, 30])
    _v = _rng.standard_normal((_k, _d))
    _cut = _rng.integers(1, _k)
    _a, _b = _partial(_s[:, :_cut], _v[:_cut]), _partial(_s[:, _cut:], _v[_cut:])
    _ex = np.exp(_s - _s.max(axis=1, keepdims=True))
    _ref = (_ex / _ex.sum(axis=1, keepdims=True)) @ _v
    for _x, _y in ((_a, _b), (_b, _a)):
        _m, _l, _o = merge(*_x, *_y)
        assert np.allclose(_o, _ref, atol=1e-9), "wrong merged output"
        assert np.allclose(_m, _s.max(axis=1)), "wrong m"
        assert np.allclose(_l * np.exp(_m), _ex.sum(axis=1) * np.exp(_s.max(axis=1))), "wrong l"
# empty sides: m = -inf, l = 0, o = 0
_e = (np.full(_n, -np.inf), np.zeros(_n), np.zeros((_n, _d)))
_m, _l, _o = merge(*_e, *_a)
assert np.allclose(_o, _a[2]) and np.allclose(_l, _a[1]) and not np.isnan(_o).any()
_m, _l, _o = merge(*_a, *_e)
assert np.allclose(_o, _a[2]) and not np.isnan(_o).any()
_m, _l, _o = merge(*_e, *_e)
assert np.isneginf(_m).all() and (_l == 0).all() and (_o == 0).all(), "empty + empty = empty"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: a striped layout's load balance (2 points)

With a causal mask, query position q sees keys 0 … q: q + 1 scores. Chapter 8 balances this
work with the **zigzag** layout (cut the sequence into 2p chunks; rank r holds chunks r and
2p − 1 − r), which gives every rank the same work. Here you price a layout the package does not
model: the **striped** (round-robin) layout, where token q lives on rank q mod p.

Implement `striped_work(seq_len, p)`: return the list of p ints, the number of unmasked
(query, key) scores each rank computes for the queries it holds (seq_len is a multiple of p).
It is nearly, but not exactly, balanced.
"""),
        solution("zigzag_impl", '''
def striped_work(seq_len, p):
    """Unmasked causal (query, key) pairs per rank when token q lives on rank q mod p."""
    ### BEGIN SOLUTION
    per_rank = seq_len // p  # tokens r, r + p, r + 2p, ...
    stride_part = p * per_rank * (per_rank - 1) // 2  # sum of j·p over j < per_rank
    return [stride_part + per_rank * (r + 1) for r in range(p)]
    ### END SOLUTION
'''),
        tests("zigzag_tests", 2, '''
# Public tests: 2 ranks, 8 tokens: rank 0 holds 0, 2, 4, 6 (1+3+5+7), rank 1 holds 1, 3, 5, 7 (2+4+6+8).
assert list(striped_work(8, 2)) == [16, 20]
assert sum(striped_work(24, 3)) == 24 * 25 // 2, "every score is computed once"
assert list(striped_work(5, 1)) == [15]
### BEGIN HIDDEN TESTS
from variants import striped_work as _ref_work
for _p in (1, 2, 3, 4, 7, 8, 16):
    for _c in (1, 2, 5, 64):
        _s = _p * _c
        _got = [int(_w) for _w in striped_work(_s, _p)]
        assert _got == _ref_work(_s, _p), f"wrong work per rank for seq_len={_s}, p={_p}"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your run (6 points)

Your run trains on sequences of `PARAMS["seq_len"]` tokens (micro-batch `PARAMS["micro_batch"]`)
with context parallelism of degree `PARAMS["cp"]` on `PARAMS["gpu"]` GPUs (dense bf16 peak
`PARAMS["peak_flops"]` FLOP/s), linked by `PARAMS["link"]` at `PARAMS["bandwidth_bytes_per_s"]`
bytes/s. The model has `PARAMS["d_model"]` hidden size, `PARAMS["n_heads"]` attention heads of
size d_model / n_heads, and `PARAMS["n_kv_heads"]` key/value heads (fewer than n_heads is
grouped-query attention). Activations use `PARAMS["bytes_per_element"]` bytes per element.
GB = 1e9 bytes; answers within 2 % get full marks.

* `answer_score_bytes_gb`: the bytes of one layer's full attention score matrix (all heads,
  s × s each) if it were materialised, in GB;
* `answer_kv_sent_per_rank_gb`: GB of K and V one rank sends in one layer's ring-attention
  forward (p − 1 blocks of s/p tokens; each token's K and V have n_kv_heads · d_model/n_heads
  values each);
* `answer_compute_bound_tokens`: the tokens per rank n at which one ring step's attention
  compute on one block (4·b·n²·d_model FLOPs at the peak; no causal mask) takes exactly as long
  as sending one K/V block of n tokens over the link (ignore latency). Above this, the transfer
  hides behind the compute.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_s, _p, _b, _e = PARAMS["seq_len"], PARAMS["cp"], PARAMS["micro_batch"], PARAMS["bytes_per_element"]
_dh = PARAMS["d_model"] // PARAMS["n_heads"]
answer_score_bytes_gb = _b * PARAMS["n_heads"] * _s * _s * _e / 1e9
_block = 2 * _b * (_s // _p) * PARAMS["n_kv_heads"] * _dh * _e
answer_kv_sent_per_rank_gb = (_p - 1) * _block / 1e9
# 4 b n^2 h / F = 2 b n kv dh e / B  ->  n = 2 kv dh e F / (4 h B)
answer_compute_bound_tokens = (2 * PARAMS["n_kv_heads"] * _dh * _e * PARAMS["peak_flops"]
                               / (4 * PARAMS["d_model"] * PARAMS["bandwidth_bytes_per_s"]))
### END SOLUTION
print(f"{answer_score_bytes_gb:,.1f} GB of scores, {answer_kv_sent_per_rank_gb:.3g} GB of K/V sent "
      f"per rank, compute-bound above {answer_compute_bound_tokens:,.0f} tokens per rank")
'''),
        tests("napkin_scores", 1, '''
assert isinstance(answer_score_bytes_gb, (int, float)) and answer_score_bytes_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "score_bytes_gb", answer_score_bytes_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_kv", 2, '''
assert isinstance(answer_kv_sent_per_rank_gb, (int, float)) and answer_kv_sent_per_rank_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "kv_sent_per_rank_gb", answer_kv_sent_per_rank_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_bound", 3, '''
assert isinstance(answer_compute_bound_tokens, (int, float)) and answer_compute_bound_tokens > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "compute_bound_tokens", answer_compute_bound_tokens, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
