"""Assignment 06_tensor_parallel: column- and row-parallel matmuls and their cost (chapter 6)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "06_tensor_parallel"
TITLE = "Tensor parallelism: splitting the matmuls"


def cells():
    return [
        md(f"""
# Assignment 06: {TITLE}

Chapter 6 (`notebooks/06_tensor_parallel.ipynb`) splits a transformer block's matmuls over
torch.distributed ranks the Megatron-LM way and counts the communication. Here you split
matmuls in NumPy, count the bytes tensor parallelism sends, and size **your** model.
{RULES}
Points: Part 1 (4), Part 2 (2), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT, extra_imports="import numpy as np\n"),
        md("""
## Part 1: column- and row-parallel matmuls (4 points)

Write matmuls the way the math does: `Y = X @ W` with `X` of shape (n, d_in) and `W` of shape
(d_in, d_out). With `t` ranks (t divides the split dimension; use `np.split`):

* `column_parallel(X, W, t)`: split `W` into t blocks of **columns**; return the list of the
  t outputs `X @ W_r` (rank r's slice of the output features). Concatenated along axis 1 they
  give `X @ W`.
* `row_parallel(X, W, t)`: split `W` into t blocks of **rows** and `X` into the matching t
  blocks of columns; return the list of the t **partial** outputs `X_r @ W_r`, each of shape
  (n, d_out). Their sum (an all-reduce) is `X @ W`.
* `tp_swiglu_mlp(X, W_gate, W_up, W_down, t)`: a **SwiGLU** MLP (Shazeer 2020, as in Llama),
  `(silu(X @ W_gate) * (X @ W_up)) @ W_down` with `silu(z) = z · sigmoid(z) = z / (1 + exp(−z))`,
  split the Megatron way, which the chapter shows for a GELU MLP only: W_gate and W_up
  column-parallel **with the same column blocks**, W_down row-parallel. Return the list of the
  t partial outputs `(silu(X @ W_gate_r) * (X @ W_up_r)) @ W_down_r`. No communication is
  needed before the last matmul (the elementwise product pairs columns that live on the same
  rank), and the partial outputs sum to the full MLP.
"""),
        solution("tp_impl", '''
def column_parallel(X, W, t):
    """Per-rank outputs X @ W_r for the t column blocks of W."""
    ### BEGIN SOLUTION
    return [X @ w for w in np.split(W, t, axis=1)]
    ### END SOLUTION


def row_parallel(X, W, t):
    """Per-rank partial outputs X_r @ W_r for the t row blocks of W (their sum is X @ W)."""
    ### BEGIN SOLUTION
    return [x @ w for x, w in zip(np.split(X, t, axis=1), np.split(W, t, axis=0))]
    ### END SOLUTION


def tp_swiglu_mlp(X, W_gate, W_up, W_down, t):
    """Per-rank partial outputs of a SwiGLU MLP, W_gate and W_up split by columns, W_down by rows."""
    ### BEGIN SOLUTION
    outs = []
    for g, u, w in zip(np.split(W_gate, t, axis=1), np.split(W_up, t, axis=1), np.split(W_down, t, axis=0)):
        a = X @ g  # (n, f/t): this rank's gate pre-activations
        outs.append(((a / (1.0 + np.exp(-a))) * (X @ u)) @ w)  # (n, d)
    return outs
    ### END SOLUTION
'''),
        tests("tp_tests", 4, '''
# Public tests: 2 ranks on small matrices.
_rng = np.random.default_rng(0)
_X, _W = _rng.standard_normal((3, 4)), _rng.standard_normal((4, 6))
_cols = column_parallel(_X, _W, 2)
assert len(_cols) == 2 and _cols[0].shape == (3, 3)
assert np.allclose(np.concatenate(_cols, axis=1), _X @ _W)
_rows = row_parallel(_X, _W, 2)
assert len(_rows) == 2 and _rows[0].shape == (3, 6) and np.allclose(sum(_rows), _X @ _W)
_Wu, _Wd = _rng.standard_normal((4, 6)), _rng.standard_normal((6, 4))
_silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731
_parts = tp_swiglu_mlp(_X, _W, _Wu, _Wd, 2)
assert len(_parts) == 2 and _parts[0].shape == (3, 4)
assert np.allclose(sum(_parts), (_silu(_X @ _W) * (_X @ _Wu)) @ _Wd), "partials must sum to the SwiGLU MLP"
### BEGIN HIDDEN TESTS
from variants import swiglu_mlp as _ref_swiglu, tp_swiglu_partials as _ref_partials
_rng = np.random.default_rng(61)
for _t in (1, 2, 3, 4, 8):
    _Xh = _rng.standard_normal((5, 8 * _t))
    _Wh = _rng.standard_normal((8 * _t, 4 * _t))
    _Wh2 = _rng.standard_normal((4 * _t, 8 * _t))
    _colsh = column_parallel(_Xh, _Wh, _t)
    assert len(_colsh) == _t and all(c.shape == (5, 4) for c in _colsh)
    assert np.allclose(np.concatenate(_colsh, axis=1), _Xh @ _Wh)
    _rowsh = row_parallel(_Xh, _Wh, _t)
    assert len(_rowsh) == _t and all(r.shape == (5, 4 * _t) for r in _rowsh)
    assert np.allclose(_rowsh[0], _Xh[:, :8] @ _Wh[:8]), "rank 0 must hold the first block"
    assert np.allclose(sum(_rowsh), _Xh @ _Wh)
    _Wu = _rng.standard_normal((8 * _t, 4 * _t))
    _want = _ref_partials(_Xh, _Wh, _Wu, _Wh2, _t)
    _parts = tp_swiglu_mlp(_Xh, _Wh, _Wu, _Wh2, _t)
    assert len(_parts) == _t and all(_q.shape == (5, 8 * _t) for _q in _parts), "t partials of shape (n, d)"
    assert np.allclose(sum(_parts), _ref_swiglu(_Xh, _Wh, _Wu, _Wh2)), "partials must sum to the SwiGLU MLP"
    assert all(np.allclose(_q, _w) for _q, _w in zip(_parts, _want)), "rank r must use column/row block r"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: bytes tensor parallelism sends (2 points)

Per transformer layer, Megatron-LM's tensor parallelism calls 2 all-reduces of the b·s·h
activations in forward (after attention and after the MLP) and 2 in backward (Shoeybi et al.
2019, Fig. 4). A ring all-reduce of n bytes on t ranks sends 2(t − 1)/t · n bytes per rank.

Implement `tp_comm_bytes_per_layer(seq_len, micro_batch, d_model, tp, bytes_per_element)`: the
bytes **one rank sends** per layer per training step (forward + backward).
"""),
        solution("comm_impl", '''
def tp_comm_bytes_per_layer(seq_len, micro_batch, d_model, tp, bytes_per_element):
    """Bytes one TP rank sends per layer per training step (4 ring all-reduces of b·s·h)."""
    ### BEGIN SOLUTION
    return 4 * 2 * (tp - 1) / tp * seq_len * micro_batch * d_model * bytes_per_element
    ### END SOLUTION
'''),
        tests("comm_tests", 2, '''
# Public tests: one rank sends nothing; two ranks send the tensor once per all-reduce.
assert tp_comm_bytes_per_layer(2048, 1, 4096, 1, 2) == 0
assert tp_comm_bytes_per_layer(2048, 1, 4096, 2, 2) == 4 * 2048 * 4096 * 2
### BEGIN HIDDEN TESTS
import random as _random
from labutils.parallel.tensor.cost import tp_comm_bytes_per_layer as _ref
_r = _random.Random(62)
for _ in range(30):
    _args = (_r.choice([512, 2048, 8192]), _r.randint(1, 8), _r.choice([1024, 4096, 12288]),
             _r.choice([1, 2, 4, 8, 16, 64]), _r.choice([1, 2, 4]))
    _want = _ref(*_args[:4], bytes_per_element=_args[4])
    assert abs(tp_comm_bytes_per_layer(*_args) - _want) <= 1e-9 * max(_want, 1), "wrong bytes"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your model (6 points)

Your model has `PARAMS["n_layers"]` layers of width h = `PARAMS["d_model"]` with
a = `PARAMS["n_heads"]` heads and a 4h GELU MLP, trained on sequences of
s = `PARAMS["seq_len"]` tokens in micro-batches of b = `PARAMS["micro_batch"]`, with tensor
parallelism t = `PARAMS["tp"]`, bf16 (`PARAMS["bytes_per_element"]` bytes) weights and
activations. The TP group talks over `PARAMS["link"]` (bandwidth
`PARAMS["bandwidth_bytes_per_s"]` bytes/s, the lecture's figure; latency α = `PARAMS["alpha_s"]`
s per message). GB = 1e9 bytes; answers within 2 % get full marks.

* `answer_weights_per_rank_gb`: GB of matmul weights one rank holds for all layers: each layer
  has 12h² of them (4h² attention, 8h² MLP), split over t ranks (ignore biases, norms and
  embeddings);
* `answer_act_tp_gb` and `answer_act_sp_gb`: GB of activations **one layer** keeps for
  backward on one rank, with TP alone, sbh·(10 + 24/t + 5as/(ht)) bytes (Korthikanti et al.
  2022, Eq. 2), and with TP + sequence parallelism, sbh/t·(34 + 5as/h) (Eq. 4);
* `answer_comm_s`: seconds of one layer's TP communication per training step: 4 ring
  all-reduces of b·s·h·e bytes, each 2(t − 1)·α + 2(t − 1)/t · n/bandwidth.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
_s, _b, _h, _a, _t, _e = (PARAMS["seq_len"], PARAMS["micro_batch"], PARAMS["d_model"],
                          PARAMS["n_heads"], PARAMS["tp"], PARAMS["bytes_per_element"])
answer_weights_per_rank_gb = 12 * _h**2 / _t * _e * PARAMS["n_layers"] / 1e9
answer_act_tp_gb = _s * _b * _h * (10 + 24 / _t + 5 * _a * _s / (_h * _t)) / 1e9
answer_act_sp_gb = _s * _b * _h / _t * (34 + 5 * _a * _s / _h) / 1e9
_n = _s * _b * _h * _e
answer_comm_s = 4 * (2 * (_t - 1) * PARAMS["alpha_s"]
                     + 2 * (_t - 1) / _t * _n / PARAMS["bandwidth_bytes_per_s"])
### END SOLUTION
print(f"{answer_weights_per_rank_gb:.1f} GB of weights per rank; activations per layer "
      f"{answer_act_tp_gb:.2f} GB (TP), {answer_act_sp_gb:.2f} GB (TP+SP); "
      f"{answer_comm_s * 1e3:.3g} ms of TP communication per layer")
'''),
        tests("napkin_weights", 1, '''
assert isinstance(answer_weights_per_rank_gb, (int, float)) and answer_weights_per_rank_gb > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "weights_per_rank_gb", answer_weights_per_rank_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_activations", 2, '''
assert 0 < answer_act_sp_gb < answer_act_tp_gb, "sequence parallelism must save memory"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "act_tp_gb", answer_act_tp_gb, student=STUDENT_ID)
grading.check_answer(ASSIGNMENT, "act_sp_gb", answer_act_sp_gb, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_comm", 3, '''
assert isinstance(answer_comm_s, (int, float)) and answer_comm_s > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "comm_s", answer_comm_s, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
