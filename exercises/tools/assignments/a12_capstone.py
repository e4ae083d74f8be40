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
the enumeration of parallel layouts and the model-state memory of one GPU, and plan **your**
run on the back of an envelope.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: every valid layout of a cluster (4 points)

A cluster of `n_gpus` GPUs, `gpus_per_node` per node, trains a model with `n_layers` layers and
`n_heads` attention heads on a global batch of `global_batch_seqs` sequences. A layout
`(dp, tp, pp)` is valid when

* `dp * tp * pp == n_gpus` (every GPU is used);
* `tp <= gpus_per_node` (tensor parallelism stays inside a node) and `tp` divides `n_heads`;
* `pp` divides `n_layers` (equal stages);
* `dp` divides `global_batch_seqs` (each replica gets whole sequences; micro-batch 1).

Implement `valid_layouts(n_gpus, gpus_per_node, n_layers, n_heads, global_batch_seqs)`: return
all valid `(dp, tp, pp)` tuples as a list sorted in increasing order.
"""),
        solution("layouts_impl", '''
def valid_layouts(n_gpus, gpus_per_node, n_layers, n_heads, global_batch_seqs):
    """Sorted list of (dp, tp, pp) with dp·tp·pp = n_gpus obeying the divisibility rules."""
    ### BEGIN SOLUTION
    out = []
    for tp in range(1, min(gpus_per_node, n_gpus) + 1):
        if n_gpus % tp or n_heads % tp:
            continue
        for pp in range(1, n_gpus // tp + 1):
            if (n_gpus // tp) % pp or n_layers % pp:
                continue
            dp = n_gpus // (tp * pp)
            if global_batch_seqs % dp == 0:
                out.append((dp, tp, pp))
    return sorted(out)
    ### END SOLUTION
'''),
        tests("layouts_tests", 4, '''
# Public tests: one GPU has one layout; 8 GPUs on a 2-layer, 2-head model.
assert [tuple(x) for x in valid_layouts(1, 8, 4, 4, 16)] == [(1, 1, 1)]
assert [tuple(x) for x in valid_layouts(8, 8, 2, 2, 8)] == [(2, 2, 2), (4, 1, 2), (4, 2, 1), (8, 1, 1)]
### BEGIN HIDDEN TESTS
from labutils import plan as _plan
for _g, _node, _L, _heads, _seqs in [(64, 8, 32, 32, 1024), (96, 8, 48, 48, 768), (256, 4, 80, 64, 512),
                                     (48, 6, 36, 24, 96), (128, 8, 126, 128, 64), (12, 8, 12, 8, 6)]:
    _cfg = _plan.llama_like_config(_L, 128 * _heads)
    _goal = _plan.Goal(compute_flops=1e22, n_gpus=_g, gpus_per_node=_node, seq_len=6144,
                       global_batch_tokens=_seqs * 6144)  # 6144: every tp <= 8 divides it
    _want = sorted({(l.dp, l.tp, l.pp) for l in _plan.enumerate_layouts(
        _cfg, _goal, micro_batches=(1,), recomputes=("selective",))})
    _got = [tuple(x) for x in valid_layouts(_g, _node, _L, _heads, _seqs)]
    assert _got == _want, f"wrong layouts for n_gpus={_g}, gpus_per_node={_node}, layers={_L}, heads={_heads}, batch={_seqs}"
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
