"""FLOPs of a decoder-only transformer, counted exactly and by the published rules of thumb.

Chapter 1 ("transformer FLOPs and parameters") narrates this module; chapters on throughput,
memory and scaling laws call :func:`flops_per_token` and :func:`training_flops`.

Conventions (all counts are FLOPs, i.e. floating-point operations, not FLOP/s):

* A multiply-accumulate is 2 FLOPs, so ``X @ W`` with X (B, D1) and W (D1, D2) costs 2·B·D1·D2.
* Only matrix multiplications are counted ("matmul FLOPs"). Softmax, GELU/SiLU, normalisation,
  residual adds, biases, RoPE rotations, embedding lookups and the loss are left out: together
  they are O(B·T·d) per layer against the matmuls' O(B·T·d²), and
  ``torch.utils.flop_counter.FlopCounterMode`` does not count them either.

Two ways of counting attention, stated explicitly:

1. **Full scores (exact for our code).** The reference GPT (:mod:`labutils.nn.gpt`,
   ``attn_impl="math"``) computes every entry of the T×T score matrix and *then* masks the upper
   triangle with -inf. The matmuls do all T² entries of work, so the FLOPs actually executed (and
   what ``FlopCounterMode`` reports) are the full count: per layer, 2·B·T²·d for Q·Kᵀ plus
   2·B·T²·d for score·V. :func:`matmul_flops`, :func:`block_flops_table` and
   :func:`flops_per_token` count this way, and a test checks them against ``FlopCounterMode``
   exactly. PaLM's accounting (Chowdhery et al. 2022, App. B: 6N + 12·L·H·Q·T per token for
   training, H·Q = d) is the same full count.
2. **Causal half (Kaplan et al. 2020, Table 1).** A causal kernel only *needs* the lower triangle
   (FlashAttention skips the masked blocks), about half the entries. Kaplan's forward count is
   2N + 2·n_layer·n_ctx·d_attn per token: half the full 4·n_layer·n_ctx·d_attn.
   :func:`kaplan_flops_per_token` and ``attention_flops_per_token(..., causal=True)`` count
   this way. (The exact lower triangle has T(T+1)/2 entries, so the true saving is slightly less
   than half; Kaplan's T/2 is the large-T limit.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labutils.model import TransformerConfig, count_params
from labutils.tables import markdown_table
from labutils.validate import integer, non_negative, positive, positive_int

FLOPS_PER_MAC = 2  # one multiply + one add
#: The backward pass of a matmul costs twice its forward: ∂L/∂W and ∂L/∂X are each a matmul as
#: large as the forward (Lecture 0, *Large Scale Pretrain Overview*, "Recall the Linear Layer
#: Computation": the backward computes X^T·∂L/∂Y and ∂L/∂Y·W^T). Every "backward = 2× forward"
#: in labutils reads this constant.
BACKWARD_TO_FORWARD_FLOPS = 2


def _check_cfg(cfg: object) -> TransformerConfig:
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a labutils.model.TransformerConfig, got {type(cfg).__name__}")
    return cfg


def _seq(cfg: TransformerConfig, seq_len: int | None) -> int:
    if seq_len is None:
        return cfg.seq_len
    return positive_int("seq_len", seq_len)


# ---------------------------------------------------------------------------------------------
# The linear layer (lecture 000_f52c65b7512ce437.txt, "Recall the Linear Layer Computation")
# ---------------------------------------------------------------------------------------------


def linear_forward_flops(n_rows: int, d_in: int, d_out: int) -> int:
    """FLOPs of Y = X·W with X (n_rows, d_in) and W (d_in, d_out): 2·n_rows·d_in·d_out.

    ``n_rows`` is the number of tokens the layer sees (batch × sequence). A bias add (n_rows·d_out
    FLOPs) is not a matmul and is not counted.
    """
    for name, v in (("n_rows", n_rows), ("d_in", d_in), ("d_out", d_out)):
        positive_int(name, v)
    return FLOPS_PER_MAC * n_rows * d_in * d_out


def linear_backward_flops(n_rows: int, d_in: int, d_out: int, *, input_grad: bool = True) -> int:
    """FLOPs of the backward pass of Y = X·W: ∂L/∂W = Xᵀ·dY and ∂L/∂X = dY·Wᵀ.

    Each is a matmul as large as the forward (2·n_rows·d_in·d_out), so the backward is 2× the
    forward. ``input_grad=False`` drops ∂L/∂X (the first layer when its input needs no gradient),
    leaving 1×.
    """
    fwd = linear_forward_flops(n_rows, d_in, d_out)
    if not isinstance(input_grad, bool):
        raise TypeError(f"input_grad must be a bool, got {input_grad!r}")
    return BACKWARD_TO_FORWARD_FLOPS * fwd if input_grad else fwd


def training_multiplier() -> int:
    """Forward + backward = 1 + 2 = 3 forwards (:data:`BACKWARD_TO_FORWARD_FLOPS`), so training
    costs 3·2 = 6 FLOPs per parameter per token, the "6" of C ≈ 6ND."""
    return 1 + BACKWARD_TO_FORWARD_FLOPS


# ---------------------------------------------------------------------------------------------
# The block table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopRow:
    """One computation of a transformer block, as in the lecture's block table.

    ``flops`` counts matmul FLOPs of the forward pass for the whole batch (0 for element-wise
    rows such as softmax or the activation, which the table lists for completeness).
    """

    name: str  # e.g. "Q = x·W^Q"
    inputs: str  # input shapes, e.g. "x (4, 128, 768), W^Q (768, 768)"
    output: str  # output shape
    flops: int  # forward matmul FLOPs for the batch
    kind: str  # "linear" (a weight matmul), "attention" (activation × activation) or "elementwise"


def _shape(*dims: int) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def block_flops_table(cfg: TransformerConfig, batch: int, seq_len: int) -> list[FlopRow]:
    """Rows of the lecture's block table for one transformer block of ``cfg``, forward pass.

    ``batch`` sequences of ``seq_len`` tokens. Shapes follow the reference GPT
    (:mod:`labutils.nn.gpt`): B = batch, T = seq_len, d = d_model, nh = heads, hs = head size,
    F = MLP width, kv = K/V width (``cfg.kv_dim``: d without grouped-query attention, fewer
    heads' worth with it; each K/V head then serves ``cfg.query_group_size`` query heads, so
    the score and P·V rows are unchanged). Attention rows count the full T×T scores (see the
    module docstring). Multiply
    the sum by ``cfg.n_layers`` and add :func:`head_flops` for the whole model
    (:func:`matmul_flops`).
    """
    cfg = _check_cfg(cfg)
    B, T = positive_int("batch", batch), positive_int("seq_len", seq_len)
    d, nh, hs, f = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.ffn_dim
    n = B * T  # tokens in the batch
    kv = cfg.kv_dim
    x, W_dd, W_dkv = _shape(B, T, d), _shape(d, d), _shape(d, kv)
    rows = [
        FlopRow("Q = x·W^Q", f"x {x}, W^Q {W_dd}", _shape(B, T, d), linear_forward_flops(n, d, d), "linear"),
        FlopRow("K = x·W^K", f"x {x}, W^K {W_dkv}", _shape(B, T, kv), linear_forward_flops(n, d, kv), "linear"),
        FlopRow("V = x·W^V", f"x {x}, W^V {W_dkv}", _shape(B, T, kv), linear_forward_flops(n, d, kv), "linear"),
        # (B, nh, T, hs) @ (B, nh, hs, T) -> (B, nh, T, T): 2·B·nh·T·hs·T = 2·B·T²·d
        FlopRow(
            "S = Q·Kᵀ/√hs",
            f"Q {_shape(B, nh, T, hs)}, Kᵀ {_shape(B, nh, hs, T)}",
            _shape(B, nh, T, T),
            FLOPS_PER_MAC * B * nh * T * hs * T,
            "attention",
        ),
        FlopRow("P = softmax(mask(S))", f"S {_shape(B, nh, T, T)}", _shape(B, nh, T, T), 0, "elementwise"),
        # (B, nh, T, T) @ (B, nh, T, hs) -> (B, nh, T, hs): 2·B·T²·d
        FlopRow(
            "Z = P·V",
            f"P {_shape(B, nh, T, T)}, V {_shape(B, nh, T, hs)}",
            _shape(B, nh, T, hs),
            FLOPS_PER_MAC * B * nh * T * T * hs,
            "attention",
        ),
        FlopRow("Out = Z·W^O", f"Z {x}, W^O {W_dd}", _shape(B, T, d), linear_forward_flops(n, d, d), "linear"),
        FlopRow("A = Out·W^1", f"Out {x}, W^1 {_shape(d, f)}", _shape(B, T, f), linear_forward_flops(n, d, f), "linear"),
    ]
    if cfg.mlp == "swiglu":
        rows += [
            FlopRow("G = Out·W^3 (gate)", f"Out {x}, W^3 {_shape(d, f)}", _shape(B, T, f), linear_forward_flops(n, d, f), "linear"),
            FlopRow("A' = silu(G)⊙A", f"G {_shape(B, T, f)}, A {_shape(B, T, f)}", _shape(B, T, f), 0, "elementwise"),
        ]
    else:
        rows.append(FlopRow("A' = gelu(A)", f"A {_shape(B, T, f)}", _shape(B, T, f), 0, "elementwise"))
    rows.append(
        FlopRow("x' = A'·W^2", f"A' {_shape(B, T, f)}, W^2 {_shape(f, d)}", _shape(B, T, d), linear_forward_flops(n, f, d), "linear")
    )
    return rows


def head_flops(cfg: TransformerConfig, batch: int, seq_len: int) -> int:
    """Forward FLOPs of the LM head, logits = x·W_headᵀ: 2·B·T·d·V.

    Paid whether or not the head is tied to the token embedding: tying shares the parameters,
    not the work. The embedding lookup itself is indexing (0 FLOPs).
    """
    cfg = _check_cfg(cfg)
    B, T = positive_int("batch", batch), positive_int("seq_len", seq_len)
    return linear_forward_flops(B * T, cfg.d_model, cfg.vocab_size)


def format_flops_table(rows: Sequence[FlopRow], *, n_layers: int | None = None) -> str:
    """The block table as a Markdown table (with a total; ×n_layers when given).

    Rendered by :func:`labutils.tables.markdown_table`, the course's one table helper, so the
    chapter needs no table package at run time. Show it with ``IPython.display.Markdown``.
    """
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
        raise TypeError(f"rows must be a non-empty sequence of FlopRow (from block_flops_table), got {rows!r:.80}")
    for i, r in enumerate(rows):
        if not isinstance(r, FlopRow):
            raise TypeError(f"rows[{i}] must be a FlopRow, got {type(r).__name__}")
    if n_layers is not None:
        positive_int("n_layers", n_layers)

    def row(name: str, inputs: str, output: str, flops: str) -> dict[str, str]:
        return {"computation": name, "inputs": inputs, "output": output, "forward FLOPs": flops}

    body = [row(r.name, r.inputs, r.output, f"{r.flops:,}" if r.flops else "- (not a matmul)") for r in rows]
    total = sum(r.flops for r in rows)
    body.append(row("total per block", "", "", f"{total:,}"))
    if n_layers is not None:
        body.append(row(f"× {n_layers} blocks", "", "", f"{total * n_layers:,}"))
    return markdown_table(body)


# ---------------------------------------------------------------------------------------------
# Exact whole-model matmul FLOPs (match torch.utils.flop_counter for labutils.nn.GPT, "math")
# ---------------------------------------------------------------------------------------------


def matmul_flops(cfg: TransformerConfig, batch: int, seq_len: int, *, backward: bool = False) -> int:
    """Exact matmul FLOPs of one step of :class:`labutils.nn.GPT` (``attn_impl="math"``).

    Forward only (``backward=False``), or forward + backward (``backward=True``): every matmul
    A·B in the backward computes two gradients (∂A and ∂B), each as costly as the forward, so
    forward + backward = 3 × forward. In the reference GPT every matmul input needs a gradient
    (the first block's input comes from the trainable embedding), so the 3× is exact.
    Equals ``FlopCounterMode`` on the same step (tests/test_flops.py).
    """
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {backward!r}")
    block = sum(r.flops for r in block_flops_table(cfg, batch, seq_len))
    fwd = cfg.n_layers * block + head_flops(cfg, batch, seq_len)
    return training_multiplier() * fwd if backward else fwd


def matmul_params(cfg: TransformerConfig) -> int:
    """Parameters that take part in a matmul for every token (the N of "2N FLOPs per token").

    Attention (2·d² + 2·d·kv per layer: 4·d² without grouped-query attention) + MLP (2·d·F
    GELU, 3·d·F SwiGLU, per layer) + the LM head (V·d,
    counted even when tied: the head matmul runs either way). Excludes what costs no matmul:
    embedding lookups (token table when untied, position table), biases and norm scales.
    """
    cfg = _check_cfg(cfg)
    d, f, L = cfg.d_model, cfg.ffn_dim, cfg.n_layers
    n_mlp_mats = 3 if cfg.mlp == "swiglu" else 2
    return L * (2 * d * d + 2 * d * cfg.kv_dim + n_mlp_mats * d * f) + cfg.vocab_size * d


def attention_flops_per_token(
    cfg: TransformerConfig, *, training: bool = True, causal: bool = False, seq_len: int | None = None
) -> float:
    """FLOPs per token of the two activation-by-activation matmuls (Q·Kᵀ and P·V), all layers.

    Forward, full scores: 4·L·T·d (2·T·d for Q·Kᵀ and 2·T·d for P·V per layer per token).
    ``causal=True`` halves it (Kaplan et al. 2020, Table 1: 2·n_layer·n_ctx·d_attn forward).
    ``training=True`` multiplies by 3 (backward = 2× forward); full scores give PaLM's
    12·L·d·T (Chowdhery et al. 2022, App. B). ``seq_len`` defaults to ``cfg.seq_len``.
    """
    cfg = _check_cfg(cfg)
    T = _seq(cfg, seq_len)
    for name, v in (("training", training), ("causal", causal)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} must be a bool, got {v!r}")
    fwd = 4.0 * cfg.n_layers * T * cfg.d_model
    if causal:
        fwd /= 2  # Kaplan: only the unmasked (lower) triangle, ≈ T/2 keys per query
    return training_multiplier() * fwd if training else fwd


def flops_per_token(
    cfg: TransformerConfig, *, training: bool = True, attention: bool = True, seq_len: int | None = None
) -> float:
    """Matmul FLOPs per token: (6 or 2)·N + attention, N = :func:`matmul_params`.

    ``training=True``: forward + backward, 6·N + 12·L·d·T (PaLM, App. B). ``training=False``:
    forward only, 2·N + 4·L·d·T. ``attention=False`` drops the T-dependent term, leaving the
    6N (2N) of C ≈ 6ND. Attention counts the full T×T scores (what the math path executes), so
    ``flops_per_token(cfg, training=t, seq_len=T) · B · T == matmul_flops(cfg, B, T, backward=t)``
    exactly. ``seq_len`` defaults to ``cfg.seq_len``.
    """
    cfg = _check_cfg(cfg)
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {training!r}")
    if not isinstance(attention, bool):
        raise TypeError(f"attention must be a bool, got {attention!r}")
    dense = (training_multiplier() if training else 1) * FLOPS_PER_MAC * matmul_params(cfg)  # 6N or 2N
    attn = attention_flops_per_token(cfg, training=training, seq_len=seq_len) if attention else 0.0
    return float(dense + attn)


def kaplan_flops_per_token(cfg: TransformerConfig, *, training: bool = True, seq_len: int | None = None) -> float:
    """Kaplan et al. 2020, Table 1: C_forward = 2N + 2·n_layer·n_ctx·d_attn per token.

    N is Kaplan's non-embedding count of weight matrices (no LM head, no biases or norms), and the
    attention term is the causal half. Training is 3× forward. Smaller than
    :func:`flops_per_token` by the head (2·V·d per token forward) and half the attention.
    """
    cfg = _check_cfg(cfg)
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {training!r}")
    n_kaplan = matmul_params(cfg) - cfg.vocab_size * cfg.d_model
    fwd = FLOPS_PER_MAC * n_kaplan + attention_flops_per_token(cfg, training=False, causal=True, seq_len=seq_len)
    return float(training_multiplier() * fwd if training else fwd)


def attention_share(
    cfg: TransformerConfig, seq_len: int | None = None, *, training: bool = True, causal: bool = False
) -> float:
    """Fraction of the per-token matmul FLOPs spent in Q·Kᵀ and P·V (0..1).

    Uses :func:`flops_per_token` (full scores) or, with ``causal=True``, the halved attention
    term against the same dense part. The share is the same for training and inference (both
    terms scale by 3).
    """
    cfg = _check_cfg(cfg)
    attn = attention_flops_per_token(cfg, training=training, causal=causal, seq_len=seq_len)
    dense = flops_per_token(cfg, training=training, attention=False)
    return attn / (dense + attn)


def attention_share_curve(
    cfg: TransformerConfig, seq_lens: Sequence[int], *, causal: bool = False
) -> list[float]:
    """:func:`attention_share` for each sequence length in ``seq_lens`` (for plots)."""
    if isinstance(seq_lens, (str, bytes)) or not isinstance(seq_lens, Sequence) or not seq_lens:
        raise TypeError(f"seq_lens must be a non-empty sequence of ints >= 1 (tokens), got {seq_lens!r:.80}")
    return [attention_share(cfg, T, causal=causal) for T in seq_lens]


def crossover_seq_len(cfg: TransformerConfig) -> float:
    """Sequence length (tokens) at which attention FLOPs equal the dense matmul FLOPs.

    From 4·L·d·T = 2·N: T* = N / (2·L·d). For a GELU block without head, N ≈ 12·L·d², so
    T* ≈ 6·d: attention dominates only once the context is several times the width.
    """
    cfg = _check_cfg(cfg)
    return matmul_params(cfg) / (2 * cfg.n_layers * cfg.d_model)


# ---------------------------------------------------------------------------------------------
# C ≈ 6ND
# ---------------------------------------------------------------------------------------------


def training_flops(n_params: float, n_tokens: float) -> float:
    """Total training compute C ≈ 6·N·D in FLOPs (lecture 000_f52c65b7512ce437.txt; Kaplan et al.
    2020, Sec. 2.1). ``n_params`` parameters, ``n_tokens`` training tokens, both finite and > 0:
    a run without parameters or tokens is not a training run."""
    N = positive("n_params", n_params)
    D = positive("n_tokens", n_tokens)
    return 6.0 * N * D


def training_compute(cfg: TransformerConfig, n_tokens: float, *, attention: bool = True) -> float:
    """Training FLOPs for ``n_tokens`` tokens (finite, > 0) of ``cfg``: :func:`flops_per_token` × tokens."""
    D = positive("n_tokens", n_tokens)
    return flops_per_token(cfg, training=True, attention=attention) * D


def six_nd_error(cfg: TransformerConfig, n_params: float | None = None) -> float:
    """Relative error of 6·N as an estimate of the exact training FLOPs per token
    (:func:`flops_per_token`): (6N − exact) / exact. Negative means 6N underestimates.

    N is ``count_params(cfg)`` unless ``n_params`` is given (e.g. a :class:`~labutils.model.Preset`'s
    ``count()``, which includes parameters the config cannot express); it must be finite and > 0.
    """
    exact = flops_per_token(cfg, training=True, attention=True)
    N = float(count_params(cfg)) if n_params is None else positive("n_params", n_params)
    return (6.0 * N - exact) / exact


# ---------------------------------------------------------------------------------------------
# Measuring with PyTorch's own counter
# ---------------------------------------------------------------------------------------------


def count_torch_flops(step: Callable[[], object]) -> dict[str, int]:
    """Run ``step()`` under ``torch.utils.flop_counter.FlopCounterMode``; return FLOPs by aten op.

    Keys are op names such as ``"aten.mm"``, ``"aten.addmm"``, ``"aten.bmm"``; ``"total"`` is
    their sum. Only ops with a registered formula are counted (matmuls, convolutions and the
    fused attention kernels PyTorch registers; on CPU, ``scaled_dot_product_attention`` runs a
    kernel with no formula and counts 0).
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    with FlopCounterMode(display=False) as counter:
        step()
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    by_op["total"] = int(counter.get_total_flops())
    return by_op


def measure_gpt_flops(
    cfg: TransformerConfig, batch: int, seq_len: int, *, backward: bool = False, attn_impl: str = "math", seed: int = 0
) -> dict[str, int]:
    """Build :class:`labutils.nn.GPT` for ``cfg`` and count one forward (and backward) pass with
    :func:`count_torch_flops`, on random token ids (batch, seq_len). Returns FLOPs by aten op."""
    import torch

    from labutils.nn import GPT

    cfg = _check_cfg(cfg)
    B, T = positive_int("batch", batch), positive_int("seq_len", seq_len)
    if T > cfg.seq_len:
        raise ValueError(f"seq_len must be <= cfg.seq_len={cfg.seq_len}, got {T}")
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {backward!r}")
    gen = torch.Generator().manual_seed(integer("seed", seed, 0))
    model = GPT(cfg, attn_impl=attn_impl)
    idx = torch.randint(0, cfg.vocab_size, (B, T), generator=gen)

    def step() -> None:
        _, loss = model(idx, idx)
        if backward:
            loss.backward()

    return count_torch_flops(step)


def measure_linear_flops(n_rows: int, d_in: int, d_out: int, *, bias: bool = True) -> tuple[int, int]:
    """Measured (forward, backward) FLOPs of one ``nn.Linear(d_in, d_out)`` on an input
    (n_rows, d_in) that requires a gradient, from ``FlopCounterMode``."""
    import torch

    for name, v in (("n_rows", n_rows), ("d_in", d_in), ("d_out", d_out)):
        positive_int(name, v)
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {bias!r}")
    layer = torch.nn.Linear(d_in, d_out, bias=bias)
    x = torch.randn(n_rows, d_in, requires_grad=True)
    out: list[torch.Tensor] = []
    fwd = count_torch_flops(lambda: out.append(layer(x)))["total"]
    y = out[0]
    bwd = count_torch_flops(lambda: y.sum().backward())["total"]
    return fwd, bwd


#: SI prefixes from the largest down, as :func:`format_flops` tries them.
SI_PREFIXES = (("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9),
               ("M", 1e6), ("k", 1e3))


def format_flops(flops: float) -> str:
    """Human-readable FLOPs with an SI prefix, e.g. ``format_flops(3.15e23) == '315 ZFLOP'``."""
    x = non_negative("flops", flops)
    for prefix, scale in SI_PREFIXES:
        if x >= scale:
            return f"{x / scale:.3g} {prefix}FLOP"
    return f"{x:.3g} FLOP"
