"""Assignment 05_data_parallel: the ring all-reduce and its cost (chapter 5)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "05_data_parallel"
TITLE = "Data parallelism: the ring all-reduce"


def cells():
    return [
        md(f"""
# Assignment 05: {TITLE}

Chapter 5 (`notebooks/05_data_parallel.ipynb`) builds a ring all-reduce from send/recv on real
torch.distributed ranks, and prices it with the α–β model. Here you simulate the ring step by
step in plain Python, price a two-level variant the chapter does not build, and estimate the
gradient all-reduce of **your** run.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT, extra_imports="import numpy as np\n"),
        md("""
## Part 1: a ring all-reduce, step by step (4 points)

`p` ranks each hold a 1-D NumPy array of the same length n. Split each array into p contiguous
chunks with `np.array_split(x, p)` (the first n mod p chunks are one element longer). Rank r
sends only to rank (r + 1) mod p.

1. **Reduce-scatter**, steps s = 0 … p−2: every rank r sends its chunk (r − s − 1) mod p to the
   next rank, which adds it to its own copy of that chunk. Afterwards rank r holds the complete
   sum of chunk r.
2. **All-gather**, steps s = 0 … p−2: every rank r sends its chunk (r − s) mod p to the next
   rank, which overwrites its copy. Afterwards every rank holds every summed chunk.

Implement `ring_all_reduce_sim(buffers)`: take a list of p arrays, **simulate the steps above**
(do not modify the inputs), and return `(results, sent)`: the list of p arrays each rank ends with
(each equal to the element-wise sum), and the list of p ints `sent[r]`, the number of elements
rank r sent. All sends of one step happen at the same time: use the values from before the step.
"""),
        solution("ring_impl", '''
def ring_all_reduce_sim(buffers):
    """Simulate a ring all-reduce on p ranks; returns (per-rank results, elements sent per rank)."""
    ### BEGIN SOLUTION
    p = len(buffers)
    chunks = [[c.astype(float).copy() for c in np.array_split(np.asarray(b), p)] for b in buffers]
    sent = [0] * p
    for s in range(p - 1):  # reduce-scatter
        msgs = [(r, (r - s - 1) % p, chunks[r][(r - s - 1) % p].copy()) for r in range(p)]
        for r, c, data in msgs:
            chunks[(r + 1) % p][c] += data
            sent[r] += data.size
    for s in range(p - 1):  # all-gather
        msgs = [(r, (r - s) % p, chunks[r][(r - s) % p].copy()) for r in range(p)]
        for r, c, data in msgs:
            chunks[(r + 1) % p][c] = data
            sent[r] += data.size
    return [np.concatenate(cs) for cs in chunks], sent
    ### END SOLUTION
'''),
        tests("ring_tests", 4, '''
# Public tests: 3 ranks, 7 elements (not divisible by 3).
_bufs = [np.arange(7.0) * (r + 1) for r in range(3)]
_res, _sent = ring_all_reduce_sim(_bufs)
assert len(_res) == 3 and all(np.allclose(x, np.arange(7.0) * 6) for x in _res)
assert sum(_sent) == 2 * (3 - 1) * 7, "in total the ring sends 2(p-1)n elements"
assert all(np.array_equal(b, np.arange(7.0) * (r + 1)) for r, b in enumerate(_bufs)), "inputs changed"
### BEGIN HIDDEN TESTS
from labutils.parallel.collectives import ring_all_reduce_sent_elements as _ref_sent
_rng = np.random.default_rng(8)
for _p in (2, 3, 4, 5, 8):
    for _n in (0, 1, _p - 1, _p, 3 * _p + 1, 50):
        _bufs = [_rng.standard_normal(_n) for _ in range(_p)]
        _res, _sent = ring_all_reduce_sim([b.copy() for b in _bufs])
        assert all(np.allclose(x, np.sum(_bufs, axis=0)) for x in _res), "wrong sums"
        assert list(_sent) == [_ref_sent(_n, _p, _r) for _r in range(_p)], "wrong elements sent"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: a two-level all-reduce in the α–β model (2 points)

With α seconds per message and β seconds per byte, a ring all-reduce of n bytes on p ranks
takes 2(p − 1) steps of one message each, and sends 2(p − 1)/p · n bytes per rank:
t = 2(p − 1)·α + 2(p − 1)/p · n · β (Patarasuk and Yuan 2009). Chapter 5 has it
(`labutils.parallel.alpha_beta.alpha_beta_time`).

A cluster has `n_nodes` nodes of `gpus_per_node` GPUs: links inside a node are fast
(α_intra, β_intra), links between nodes slow (α_inter, β_inter). A **two-level** all-reduce,
which the package does not model, runs in three phases:

1. inside every node, a ring **reduce-scatter** over its g = `gpus_per_node` GPUs: g − 1 steps,
   each sending n/g bytes per GPU (every GPU ends up with the node's sum of one n/g shard);
2. across the nodes, a ring **all-reduce** of each n/g shard among the N = `n_nodes` GPUs that hold
   it (the g shards go in parallel, on separate links);
3. inside every node, a ring **all-gather**: g − 1 steps of n/g bytes per GPU.

Implement `two_level_allreduce_time_s(n_bytes, gpus_per_node, n_nodes, alpha_intra_s,
beta_intra_s_per_byte, alpha_inter_s, beta_inter_s_per_byte)`: the seconds of the three phases,
one after the other, in the α–β model (one α per step and message, one β per byte sent).
"""),
        solution("alpha_beta_impl", '''
def two_level_allreduce_time_s(n_bytes, gpus_per_node, n_nodes, alpha_intra_s, beta_intra_s_per_byte,
                               alpha_inter_s, beta_inter_s_per_byte):
    """Seconds of reduce-scatter in each node, all-reduce across nodes, all-gather in each node."""
    ### BEGIN SOLUTION
    g, nodes = gpus_per_node, n_nodes
    shard = n_bytes / g
    in_node_phase = (g - 1) * (alpha_intra_s + shard * beta_intra_s_per_byte)  # RS, and again for AG
    across = 2 * (nodes - 1) * alpha_inter_s + 2 * (nodes - 1) / nodes * shard * beta_inter_s_per_byte
    return 2 * in_node_phase + across
    ### END SOLUTION
'''),
        tests("alpha_beta_tests", 2, '''
# Public tests: one GPU sends nothing; one node is a plain ring over its GPUs; one GPU per node is
# a plain ring over the nodes (2(p − 1)·α + 2(p − 1)/p · n · β).
assert two_level_allreduce_time_s(1e9, 1, 1, 1e-6, 1e-12, 1e-5, 1e-10) == 0
assert abs(two_level_allreduce_time_s(1e9, 8, 1, 1e-6, 1 / 400e9, 1e-5, 1 / 50e9)
           - (2 * 7 * 1e-6 + 2 * 7 / 8 * 1e9 / 400e9)) < 1e-12
assert abs(two_level_allreduce_time_s(1e9, 1, 16, 1e-6, 1 / 400e9, 1e-5, 1 / 50e9)
           - (2 * 15 * 1e-5 + 2 * 15 / 16 * 1e9 / 50e9)) < 1e-12
### BEGIN HIDDEN TESTS
import random as _random
from variants import hierarchical_allreduce_time_s as _ref_t
_rng = _random.Random(9)
for _ in range(40):
    _args = (10 ** _rng.uniform(0, 11), _rng.choice([1, 2, 4, 8, 16]), _rng.randint(1, 512),
             _rng.uniform(0, 1e-5), 1 / 10 ** _rng.uniform(10, 12), _rng.uniform(0, 1e-4),
             1 / 10 ** _rng.uniform(9, 11))
    _ref = _ref_t(*_args)
    assert abs(two_level_allreduce_time_s(*_args) - _ref) <= 1e-9 * max(_ref, 1e-30), "wrong time"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your run (6 points)

Your run all-reduces the gradients of a `PARAMS["n_params"]`-parameter model, stored with
`PARAMS["bytes_per_grad"]` bytes per gradient, across `PARAMS["world_size"]` ranks in a ring
over `PARAMS["link"]` (bandwidth `PARAMS["bandwidth_bytes_per_s"]` bytes/s, the lecture's figure;
β = 1 / bandwidth) with latency α = `PARAMS["alpha_s"]` s per message. GB = 1e9 bytes; answers
within 2 % get full marks.

* `answer_grad_bytes_gb`: the size of the gradients, in GB;
* `answer_sent_per_rank_gb`: GB each rank sends in one ring all-reduce of them;
* `answer_allreduce_s`: the α–β time of that all-reduce, in seconds.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_n_bytes = PARAMS["n_params"] * PARAMS["bytes_per_grad"]
_p = PARAMS["world_size"]
answer_grad_bytes_gb = _n_bytes / 1e9
answer_sent_per_rank_gb = 2 * (_p - 1) / _p * _n_bytes / 1e9
answer_allreduce_s = 2 * (_p - 1) * PARAMS["alpha_s"] + 2 * (_p - 1) / _p * _n_bytes / PARAMS["bandwidth_bytes_per_s"]
### END SOLUTION
print(f"{answer_grad_bytes_gb:.1f} GB of gradients, {answer_sent_per_rank_gb:.1f} GB sent per rank, "
      f"{answer_allreduce_s:.3g} s per all-reduce")
'''),
        tests("napkin_grad_bytes", 1, '''
assert isinstance(answer_grad_bytes_gb, (int, float)) and answer_grad_bytes_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "grad_bytes_gb", answer_grad_bytes_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_sent", 2, '''
assert answer_grad_bytes_gb <= answer_sent_per_rank_gb < 2 * answer_grad_bytes_gb
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "sent_per_rank_gb", answer_sent_per_rank_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_time", 3, '''
assert isinstance(answer_allreduce_s, (int, float)) and answer_allreduce_s > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "allreduce_s", answer_allreduce_s, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
