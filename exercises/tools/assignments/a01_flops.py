"""Assignment 01_flops: parameters and FLOPs of a GPT, by hand (chapter 1, notebooks/01_flops)."""

from _rules import RULES
from build_sources import md, setup_cell, solution, tests

ASSIGNMENT = "01_flops"
TITLE = "Parameters and FLOPs of a transformer"


def cells():
    return [
        md(f"""
# Assignment 01: {TITLE}

Chapter 1 (`notebooks/01_flops.ipynb`) derives C ≈ 6ND from one transformer block. In this
assignment you count a GPT-2's parameters and the FLOPs of a Llama-style model with a sliding
attention window yourself, then answer napkin-math questions about **your own model**, whose
size is drawn from your student id.

{RULES}
Points: Part 1 (3), Part 2 (3), Part 3 (6). Total 12.
"""),
        *setup_cell(ASSIGNMENT),
        md("""
## Part 1: count the parameters of a GPT-2-style model (3 points)

Implement `count_params_gpt2(vocab_size, seq_len, d_model, n_layers)` for a GPT-2-style decoder:

* a token embedding (`vocab_size × d_model`) and a **learned** position table (`seq_len × d_model`);
* `n_layers` blocks, each with: LayerNorm (scale and bias), attention with Q, K, V and output
  projections (`d_model × d_model` weights, each with a bias), LayerNorm, and a GELU MLP of
  width `4·d_model` (two weight matrices, each with a bias);
* a final LayerNorm, and an LM head **tied** to the token embedding (no extra parameters).

The number of heads does not change the count. Return an `int`.
"""),
        solution("count_params_impl", '''
def count_params_gpt2(vocab_size: int, seq_len: int, d_model: int, n_layers: int) -> int:
    """Parameters of a GPT-2-style decoder (tied head, learned positions, biases, LayerNorm)."""
    ### BEGIN SOLUTION
    d, f = d_model, 4 * d_model
    embedding = vocab_size * d + seq_len * d
    attention = 4 * d * d + 4 * d
    mlp = d * f + f + f * d + d
    norms = 2 * (2 * d)
    return embedding + n_layers * (attention + mlp + norms) + 2 * d
    ### END SOLUTION
'''),
        tests("count_params_tests", 3, '''
# Public tests: GPT-2 small has 124,439,808 parameters (Radford et al. 2019; the "124M" model).
assert isinstance(count_params_gpt2(50257, 1024, 768, 12), int)
assert count_params_gpt2(50257, 1024, 768, 12) == 124_439_808
assert count_params_gpt2(10, 4, 8, 1) > 0
### BEGIN HIDDEN TESTS
import random as _random
from labutils.model import TransformerConfig as _Cfg, count_params as _ref_count
_rng = _random.Random(1)
for _ in range(25):
    _d = 8 * _rng.randint(1, 64)
    _args = (_rng.randint(2, 60000), _rng.randint(1, 4096), _d, _rng.randint(1, 48))
    assert count_params_gpt2(*_args) == _ref_count(_Cfg(*_args, n_heads=1)), "wrong count for some sizes"
### END HIDDEN TESTS
'''),
        md("""
## Part 2: training FLOPs per token with sliding-window attention (3 points)

Count only matrix multiplications: `X·W` with X of shape (n, d_in) and W of shape (d_in, d_out)
costs 2·n·d_in·d_out FLOPs forward, and the backward pass costs twice the forward, so every
weight that takes part in a matmul costs 6 FLOPs per token in training.

Chapter 1 counts a GPT-2 block; `labutils.flops.flops_per_token` also counts a Llama-style one
(grouped-query attention via `TransformerConfig(n_kv_heads=...)`, SwiGLU). Here you count such a
block with **sliding-window attention**, which the package does not model: every query attends
only to the last `window` positions (Mistral 7B, Jiang et al. 2023, Sec. 2 and Table 1: a window
of 4096 tokens with sequences of 8192). Implement `llama_train_flops_per_token(vocab_size,
seq_len, d_model, n_layers, n_heads, n_kv_heads, d_ff, window)`, training (forward + backward)
matmul FLOPs per token at sequence length `seq_len`, for

* **grouped-query attention** (Ainslie et al. 2023): W_Q and W_O are `d_model × d_model`, but
  K and V have only `n_kv_heads` heads of size `d_model / n_heads`, so W_K and W_V are
  `d_model × (n_kv_heads · d_model / n_heads)`;
* a **SwiGLU MLP** (Shazeer 2020): gate and up matrices `d_model × d_ff`, a down matrix
  `d_ff × d_model`;
* an **untied** LM head (`vocab_size × d_model`); embedding lookups, norms and the
  elementwise SwiGLU product cost no matmul FLOPs;
* attention scores: each query meets `min(seq_len, window)` keys, so per layer Q·Kᵀ and P·V each
  cost 2·min(seq_len, window)·d_model FLOPs per token forward (all `n_heads` query heads; the
  whole band, the first positions' shorter rows and causal masking not subtracted), times 3 for
  training. With `window ≥ seq_len` this is PaLM's 12·L·d·T (App. B).

Return a number of FLOPs (`float` or `int`).
"""),
        solution("flops_impl", '''
def llama_train_flops_per_token(vocab_size, seq_len, d_model, n_layers, n_heads, n_kv_heads, d_ff,
                                window):
    """Matmul FLOPs per token of one training step of a GQA + SwiGLU decoder whose attention
    sees the last `window` positions."""
    ### BEGIN SOLUTION
    kv_width = n_kv_heads * (d_model // n_heads)
    attention_weights = 2 * d_model * d_model + 2 * d_model * kv_width
    swiglu_weights = 3 * d_model * d_ff
    weights_in_matmuls = n_layers * (attention_weights + swiglu_weights) + vocab_size * d_model
    keys_per_query = min(seq_len, window)
    return float(6 * weights_in_matmuls + 12 * n_layers * d_model * keys_per_query)
    ### END SOLUTION
'''),
        tests("flops_tests", 3, '''
# Public tests: the Llama-2-7B shape (Touvron et al. 2023: V = 32,000, d = 4096, L = 32, 32 heads,
# d_ff = 11,008) at 4096 tokens with a window as long as the sequence, worked by hand:
# 6 × 6,607,077,376 + 12·32·4096·4096.
_7b = llama_train_flops_per_token(32000, 4096, 4096, 32, 32, 32, 11008, 4096)
assert isinstance(_7b, (int, float))
assert abs(_7b - 46_084_915_200) <= 1e-9 * 46_084_915_200, _7b
# With 8 K/V heads instead of 32, W_K and W_V each lose 4096 × 3072 weights in every layer.
_gqa = llama_train_flops_per_token(32000, 4096, 4096, 32, 32, 8, 11008, 4096)
assert abs((_7b - _gqa) - 6 * 32 * 2 * 4096 * 3072) < 1
# Mistral 7B (Jiang et al. 2023, Table 1: d 4096, 32 layers, 32 heads, 8 K/V heads, hidden 14,336,
# vocabulary 32,000, window 4096) at 8192 tokens: 6 × 7,110,393,856 + 12·32·4096·4096; a full
# window would add 12·32·4096·4096 more.
_mistral = llama_train_flops_per_token(32000, 8192, 4096, 32, 32, 8, 14336, 4096)
assert abs(_mistral - 49_104_814_080) <= 1e-9 * 49_104_814_080, _mistral
_full = llama_train_flops_per_token(32000, 8192, 4096, 32, 32, 8, 14336, 8192)
assert abs((_full - _mistral) - 12 * 32 * 4096 * 4096) < 1
### BEGIN HIDDEN TESTS
import random as _random
from variants import llama_train_flops_per_token as _ref_fpt
_rng = _random.Random(2)
for _ in range(40):
    _heads = _rng.choice([1, 2, 4, 8, 16, 32, 64])
    _kv = _rng.choice([_k for _k in (1, 2, 4, 8, 16, 32, 64) if _heads % _k == 0])
    _d = _heads * 2 * _rng.randint(1, 64)
    _args = (_rng.randint(2, 130000), _rng.randint(1, 8192), _d, _rng.randint(1, 96), _heads, _kv,
             _rng.randint(1, 4 * _d), _rng.randint(1, 8192))
    _ref = _ref_fpt(*_args)
    assert abs(llama_train_flops_per_token(*_args) - _ref) <= 1e-9 * _ref, "wrong FLOPs for some shapes"
### END HIDDEN TESTS
'''),
        md("""
## Part 3: napkin math for your model (6 points)

Your model (printed by the setup cell) is the GPT-2-style model of Part 1 with
`PARAMS["vocab_size"]`, `PARAMS["seq_len"]`, `PARAMS["d_model"]` and `PARAMS["n_layers"]`
(`PARAMS["n_heads"]` heads), trained on `PARAMS["n_tokens"]` tokens. Assign numbers
(you may compute them with code; answers within 2 % get full marks, the parameter count must be
exact to 0.1 %):

* `answer_n_params`: its number of parameters N;
* `answer_train_flops`: its training compute C ≈ 6·N·D in FLOPs, with N from above and D the
  number of training tokens;
* `answer_flops_per_token`: its exact training matmul FLOPs per token at `PARAMS["seq_len"]`,
  counted as in Part 2 but for this GPT-2 model (chapter 1): 6 FLOPs per weight of the four
  `d_model × d_model` attention projections, the two MLP matrices (`d_model × 4·d_model` and back)
  and the LM head (`vocab_size × d_model`, tied but still a matmul), plus 12·L·d·T for attention;
* `answer_attention_share`: the fraction (between 0 and 1) of those FLOPs spent in Q·Kᵀ and P·V.
"""),
        solution("napkin", '''
### BEGIN SOLUTION
V, T, d, L = PARAMS["vocab_size"], PARAMS["seq_len"], PARAMS["d_model"], PARAMS["n_layers"]
answer_n_params = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d
answer_train_flops = 6 * answer_n_params * PARAMS["n_tokens"]
answer_flops_per_token = 6 * (12 * L * d * d + V * d) + 12 * L * d * T
answer_attention_share = 12 * L * d * T / answer_flops_per_token
### END SOLUTION
print(f"N = {answer_n_params:.4g}, C = {answer_train_flops:.3g} FLOPs, "
      f"{answer_flops_per_token:.3g} FLOPs/token, attention {answer_attention_share:.1%}")
'''),
        tests("napkin_n_params", 1, '''
assert isinstance(answer_n_params, (int, float)) and answer_n_params > 1e6
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "n_params", answer_n_params, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_train_flops", 2, '''
assert isinstance(answer_train_flops, (int, float)) and answer_train_flops > 1e15
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "train_flops", answer_train_flops, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_flops_per_token", 1, '''
assert isinstance(answer_flops_per_token, (int, float)) and answer_flops_per_token > 0
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "flops_per_token", answer_flops_per_token, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
        tests("napkin_attention_share", 2, '''
assert 0 < answer_attention_share < 1, "a share is a fraction between 0 and 1"
### BEGIN HIDDEN TESTS
grading.check_answer(ASSIGNMENT, "attention_share", answer_attention_share, student=STUDENT_ID)
### END HIDDEN TESTS
'''),
    ]
