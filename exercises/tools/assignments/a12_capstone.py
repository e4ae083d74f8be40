"""Assignment 12_capstone: layouts, model-state memory, and the napkin math of a whole run (chapter 12)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "12_capstone"
TITLE = "Capstone: planning a pretraining run"


def cells():
    return [
        md(f"""
# Assignment 12: {TITLE}

Chapter 12 (`notebooks/12_capstone.ipynb`) composes the book's tested functions into a planner:
budget → model → layout → time and cost. Here you write two of its building blocks yourself,
the enumeration of 4-D parallel layouts (a rule the chapter's planner does not apply) and the
model-state memory of one GPU, and plan **your**
run on the back of an envelope.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: every valid 4-D layout of a cluster, with context parallelism (4 points)

A cluster of `n_gpus` GPUs, `gpus_per_node` per node, trains a model with `n_layers` layers and
`n_heads` attention heads on a global batch of `global_batch_seqs` sequences of `seq_len`
tokens. Chapter 12's planner (`labutils.plan`) keeps TP inside a node. Here the rule is
stricter, as when context-parallel rings need the fast links too: a layout `(dp, tp, pp, cp)` is
valid when

* `dp * tp * pp * cp == n_gpus` (every GPU is used);
* `tp * cp` divides `gpus_per_node` (a TP group and its CP ring fit inside one node, and nodes
  split into whole groups), and `tp` divides `n_heads`;
* `pp` divides `n_layers` (equal stages);
* when `cp > 1`, `2 * cp` divides `seq_len` (the zigzag layout's 2·cp equal chunks);
* `dp` divides `global_batch_seqs` (each replica gets whole sequences; micro-batch 1).

Implement `valid_layouts_cp(n_gpus, gpus_per_node, n_layers, n_heads, seq_len,
global_batch_seqs)`: return all valid `(dp, tp, pp, cp)` tuples as a list sorted in increasing
order.
"""),
        solution("layouts_impl", '''
def valid_layouts_cp(n_gpus, gpus_per_node, n_layers, n_heads, seq_len, global_batch_seqs):
    """Sorted list of (dp, tp, pp, cp) with dp·tp·pp·cp = n_gpus obeying the rules above."""
    ### BEGIN SOLUTION
    found = []
    for tp in (k for k in range(1, gpus_per_node + 1) if gpus_per_node % k == 0 and n_heads % k == 0):
        for cp in (k for k in range(1, gpus_per_node // tp + 1) if (gpus_per_node // tp) % k == 0):
            if cp > 1 and seq_len % (2 * cp):
                continue
            if n_gpus % (tp * cp):
                continue
            rest = n_gpus // (tp * cp)
            for pp in (k for k in range(1, rest + 1) if rest % k == 0 and n_layers % k == 0):
                dp = rest // pp
                if global_batch_seqs % dp == 0:
                    found.append((dp, tp, pp, cp))
    return sorted(found)
    ### END SOLUTION
'''),
        tests("layouts_tests", 4, '''
# Public tests: one GPU has one layout; 4 GPUs in one node, 2 layers, 2 heads, 8-token sequences.
assert [tuple(x) for x in valid_layouts_cp(1, 8, 4, 4, 1024, 16)] == [(1, 1, 1, 1)]
assert [tuple(x) for x in valid_layouts_cp(4, 4, 2, 2, 8, 4)] == [
    (1, 1, 1, 4), (1, 1, 2, 2), (1, 2, 1, 2), (1, 2, 2, 1), (2, 1, 1, 2), (2, 1, 2, 1),
    (2, 2, 1, 1), (4, 1, 1, 1)]
# Across nodes only DP and PP may grow: 16 GPUs on nodes of 2 never put tp·cp above 2.
assert all(l[1] * l[3] <= 2 for l in valid_layouts_cp(16, 2, 8, 8, 4096, 64))
### BEGIN HIDDEN TESTS
from variants import valid_layouts_cp as _ref_layouts
for _args in [(64, 8, 32, 32, 8192, 1024), (96, 8, 48, 48, 4096, 768), (256, 4, 80, 64, 131072, 512),
              (48, 6, 36, 24, 6144, 96), (128, 8, 126, 128, 8192, 64), (12, 8, 12, 8, 2048, 6),
              (24, 8, 10, 12, 12, 24), (32, 16, 16, 16, 96, 8)]:
    _got = [tuple(x) for x in valid_layouts_cp(*_args)]
    assert _got == _ref_layouts(*_args), f"wrong layouts for (n_gpus, gpus_per_node, layers, heads, seq_len, batch) = {_args}"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: model-state memory of one GPU (2 points)

Mixed-precision Adam keeps 16 bytes per parameter: 2 for the bf16 weights, 2 for the bf16
gradients and 12 for the fp32 master copy, momentum and variance (Rajbhandari et al. 2020,
Sec. 3.1). Tensor and pipeline parallelism split the Ψ parameters evenly over `tp * pp` GPUs:
each holds `ceil(Ψ / (tp * pp))` of them. ZeRO then shards over the `dp` data-parallel replicas,
each rank keeping `ceil(n / dp)` elements of a sharded buffer of n elements: stage 1 shards the
optimizer state, stage 2 also the gradients, stage 3 also the weights (stage 0: nothing).

Implement `model_state_bytes_per_gpu(n_params, tp, pp, dp, zero_stage)` in bytes.
"""),
        solution("memory_impl", '''
def model_state_bytes_per_gpu(n_params, tp, pp, dp, zero_stage):
    """Bytes of weights + gradients + Adam state on one GPU (mixed precision, ZeRO over dp)."""
    ### BEGIN SOLUTION
    n = -(-int(n_params) // (tp * pp))
    shard = -(-n // dp)
    weights = 2 * (shard if zero_stage >= 3 else n)
    grads = 2 * (shard if zero_stage >= 2 else n)
    optimizer = 12 * (shard if zero_stage >= 1 else n)
    return weights + grads + optimizer
    ### END SOLUTION
'''),
        tests("memory_tests", 2, '''
# Public tests: no parallelism is 16 bytes per parameter; ZeRO-3 on 4 GPUs is a quarter of it.
assert model_state_bytes_per_gpu(1000, 1, 1, 1, 0) == 16000
assert model_state_bytes_per_gpu(1000, 1, 1, 4, 3) == 4000
### BEGIN HIDDEN TESTS
from labutils.memory import model_state_bytes as _msb, shard_numel as _shard
for _n in (7_000_000_000, 70_553_706_496, 405_000_000_001, 12_345):
    for _tp, _pp in ((1, 1), (8, 1), (8, 16), (4, 3)):
        for _dp in (1, 7, 64):
            for _z in (0, 1, 2, 3):
                _want = _msb(_shard(_n, _tp * _pp), zero_stage=_z, dp=_dp)["total"]
                _got = model_state_bytes_per_gpu(_n, _tp, _pp, _dp, _z)
                assert abs(_got - _want) <= 1e-6 * _want, f"wrong bytes for n={_n}, tp={_tp}, pp={_pp}, dp={_dp}, zero={_z}"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your run (6 points)

Your lab has a training budget of `PARAMS["compute_flops"]` FLOPs and `PARAMS["n_gpus"]`
GPUs of type `PARAMS["gpu"]`, whose dense bf16 peak is `PARAMS["peak_flops"]` FLOP/s. From
similar runs you expect an MFU of `PARAMS["mfu"]`, and renting costs
`PARAMS["usd_per_gpu_hour"]` dollars per GPU-hour. Count only C = 6·N·D FLOPs (no attention
term); answers within 2 % get full marks.

* `answer_n_params`: the compute-optimal number of parameters by the lecture's rule of thumb,
  N ≈ 0.1·C^0.5 (lecture 000, slide "Chinchilla Scaling Law");
* `answer_train_days`: how many days training on the whole budget takes at your MFU;
* `answer_cost_musd`: what the run costs, in **millions** of dollars.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_c = PARAMS["compute_flops"]
answer_n_params = 0.1 * _c ** 0.5
_seconds = _c / (PARAMS["n_gpus"] * PARAMS["peak_flops"] * PARAMS["mfu"])
answer_train_days = _seconds / 86_400
answer_cost_musd = _seconds / 3600 * PARAMS["n_gpus"] * PARAMS["usd_per_gpu_hour"] / 1e6
### END SOLUTION
print(f"N ≈ {answer_n_params / 1e9:.1f}B parameters, {answer_train_days:.1f} days, "
      f"${answer_cost_musd:.2f}M")
'''),
        tests("napkin_params", 2, '''
assert isinstance(answer_n_params, (int, float)) and answer_n_params > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "n_params", answer_n_params, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_days", 2, '''
assert isinstance(answer_train_days, (int, float)) and answer_train_days > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "train_days", answer_train_days, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_cost", 2, '''
assert isinstance(answer_cost_musd, (int, float)) and answer_cost_musd > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "cost_musd", answer_cost_musd, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
