"""Activation memory per transformer layer: the Korthikanti et al. formula, and a measurement.

Chapter 4 (memory). Activations are the tensors the forward pass saves for the backward pass.
Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models") count
them per layer, in bytes, for 16-bit activations with dropout (s = sequence, b = micro-batch,
h = hidden size, a = heads, t = tensor-parallel degree):

* Eq. 1, no parallelism:                 sbh·(34 + 5as/h)
* Eq. 2, tensor parallel:                sbh·(10 + 24/t + 5as/(ht))
* Eq. 4, tensor + sequence parallel:     sbh/t·(34 + 5as/h)
  (the paper's Eq. 3 defines the sequence-parallel operators g and ḡ, not a memory count)
* Table 2, selective recomputation (the as²b attention-core terms are recomputed):
  sbh·(10 + 24/t) with TP only, sbh·34/t with TP + SP (Eq. 6 for L layers)
* Table 2, full recomputation (only each layer's input is kept): 2sbh. Sec. 5 notes that this
  could be 2sbh/t if each tensor-parallel rank kept a slice, which the paper does not adopt; with
  sequence parallelism the layer input is already sharded over the sequence, so we count 2sbh/t
  there (our assumption, outside Table 2).
* Eq. 5, the first pipeline stage under 1F1B holds L layers' worth: sbhL/t·(34 + 5as/h).

Recomputation costs time: the paper measures 30-40 % execution-time overhead for full
recomputation (Sec. 1 and 5; 39 % on a 22B layer, Table 4), while selective recomputation adds
2.7 % (GPT-3) and 1.6 % (MT-NLG 530B) FLOPs (Sec. 5, from App. A, Eq. 7-8), 7 % time on the 22B
layer (4 % with sequence parallelism, Table 4). :func:`recompute_flops_overhead` reproduces the
FLOPs figures; lecture 001 rounds them to "2-3% slowdown" and "30% slowdown".

:func:`activation_bytes_per_layer` evaluates these, generalised to any bytes per element and to
models without dropout, so that the same formula predicts our fp32, dropout-free reference GPT.
:func:`measure_activations` then measures the bytes really held, on CPU, by tracking every tensor
storage the forward pass creates (:class:`LiveTensorTracker`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint

from labutils.validate import integer
from labutils.model import TransformerConfig

RECOMPUTE = ("none", "selective", "full")
KORTHIKANTI = "Korthikanti et al. 2022 (arXiv 2205.05198), Eq. 1, 2, 4-6, Table 2 and App. A"


def _check_recompute(recompute: object) -> str:
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    return recompute  # type: ignore[return-value]


def activation_bytes_per_layer(seq_len: int, micro_batch: int, d_model: int, n_heads: int, *,
                               tp: int = 1, sequence_parallel: bool = False,
                               recompute: str = "none", bytes_per_element: int = 2,
                               dropout: bool = True, n_kv_heads: int | None = None) -> int:
    """Bytes of activations one transformer layer keeps for backward, on one device.

    Defaults (16-bit activations, dropout with 1-byte masks, 4h GELU MLP) reproduce Korthikanti
    et al. 2022 exactly. With e = ``bytes_per_element`` the count is (per layer):

    * always kept, not split by TP: the two LayerNorm inputs and the inputs of the QKV and first
      MLP matmuls, 4·e·sbh, plus two 1-byte dropout masks 2·sbh (with dropout) -> 10sbh at e = 2;
    * split by TP: Q and K (2e·sbh), V (e·sbh), the attention-projection input (e·sbh), the GELU
      input and output (8e·sbh) -> 24sbh at e = 2; and the attention core, e·as²b for the
      softmax output plus, with dropout, its 1-byte mask and e-byte output -> 5as²b at e = 2.

    Grouped-query attention (``n_kv_heads`` < ``n_heads``; None means n_heads) shrinks the
    stored K and V to e·sb·h·kv/a each, as a fused kernel keeps them (FlashAttention reads the
    shared K/V heads without copying them); a tensor-parallel rank holds kv/t K/V heads, or one
    when t > kv (each K/V head then replicated over t/kv ranks, as Megatron-LM does).
    Sequence parallelism also splits the first group by t (Eq. 4). Selective recomputation drops
    the attention core (the as²b terms); full recomputation keeps only the layer input, e·sbh
    (Table 2; divided by t with sequence parallelism, our assumption: see the module docstring).

    Returns an int number of bytes (sbh terms are integers; the as²b term is too).
    """
    s = integer("seq_len", seq_len, 1)
    b = integer("micro_batch", micro_batch, 1)
    h = integer("d_model", d_model, 1)
    a = integer("n_heads", n_heads, 1)
    t = integer("tp", tp, 1)
    e = integer("bytes_per_element", bytes_per_element, 1)
    if not isinstance(sequence_parallel, bool):
        raise TypeError(f"sequence_parallel must be a bool, got {sequence_parallel!r}")
    if not isinstance(dropout, bool):
        raise TypeError(f"dropout must be a bool, got {dropout!r}")
    recompute = _check_recompute(recompute)
    if h % a:
        raise ValueError(f"d_model={h} must be a multiple of n_heads={a}")
    if a % t or h % t:
        raise ValueError(f"tp={t} must divide n_heads={a} and d_model={h}")
    kv = a if n_kv_heads is None else integer("n_kv_heads", n_kv_heads, 1, a)
    if a % kv:
        raise ValueError(f"n_kv_heads={kv} must divide n_heads={a}")
    if kv % t and t % kv:
        raise ValueError(f"tp={t} must divide n_kv_heads={kv} or be a multiple of it")
    if sequence_parallel and s % t:
        raise ValueError(f"with sequence_parallel, tp={t} must divide seq_len={s}")
    sbh = s * b * h
    drop = 1 if dropout else 0
    if recompute == "full":
        # Table 2: only the layer input (e·sbh) is kept; with SP it is sharded over the sequence
        # (2sbh/t, the variant Sec. 5 mentions; not a row of Table 2).
        return e * sbh // t if sequence_parallel else e * sbh
    replicated = 4 * e * sbh + 2 * drop * sbh  # LN inputs, QKV input, MLP input, 2 dropout masks
    # Q, attention-projection input, GELU in and out (e + e + 8e); K and V (e each without GQA):
    # max(kv, t) heads in all, so that a rank holds kv/t heads, or one replicated head.
    kv_heads_stored = max(kv, t)
    split = 10 * e * sbh + 2 * e * s * b * (h // a) * kv_heads_stored
    core = a * s * s * b * (e + drop * (1 + e))  # softmax out (+ dropout mask and output)
    if recompute == "selective":
        core = 0  # Table 2: the attention core is recomputed in the backward pass
    if sequence_parallel:
        return (replicated + split + core) // t  # Eq. 4
    return replicated + split // t + core // t  # Eq. 2 (Eq. 1 when t = 1)


def korthikanti_table2(seq_len: int, micro_batch: int, d_model: int, n_heads: int,
                       tp: int) -> dict[str, float]:
    """The closed forms of Korthikanti et al. 2022, Table 2, evaluated literally (bytes/layer).

    Used by the tests to check :func:`activation_bytes_per_layer` against the paper's printed
    expressions.
    """
    s, b, h, a, t = seq_len, micro_batch, d_model, n_heads, tp
    sbh = s * b * h
    return {
        "no parallelism": sbh * (34 + 5 * a * s / h),
        "tensor parallel (baseline)": sbh * (10 + 24 / t + 5 * a * s / (h * t)),
        "tensor + sequence parallel": sbh * (34 / t + 5 * a * s / (h * t)),
        "tensor parallel + selective recompute": sbh * (10 + 24 / t),
        "tensor + sequence parallel + selective recompute": sbh * 34 / t,
        "full recompute": sbh * 2,
    }


# Korthikanti et al. 2022, Sec. 5 (GPT-3 and MT-NLG shapes; L from Table 3, v = 51200 from Sec. 6):
# selective recomputation saves 70 % / 65 % of activation memory for 2.7 % / 1.6 % extra FLOPs.
# Sec. 6.2 expects 33 % for full recomputation (one extra forward) and measures 39 % (Table 4).
KORTHIKANTI_SELECTIVE = {
    "GPT-3 175B": {"seq_len": 2048, "d_model": 12288, "n_heads": 96, "n_layers": 96,
                   "vocab_size": 51200, "memory_saving": 0.70, "flops_overhead": 0.027},
    "MT-NLG 530B": {"seq_len": 2048, "d_model": 20480, "n_heads": 128, "n_layers": 105,
                    "vocab_size": 51200, "memory_saving": 0.65, "flops_overhead": 0.016},
}
KORTHIKANTI_FULL_EXPECTED_OVERHEAD = 0.33  # Sec. 6.2: "the expected 33%"


def recompute_flops_overhead(recompute: str, seq_len: int, d_model: int, n_layers: int,
                             vocab_size: int) -> float:
    """Extra FLOPs of recomputation as a fraction of model FLOPs (Korthikanti et al. 2022, App. A).

    Model FLOPs per iteration (Eq. 7): 72·BLsh²·(1 + s/(6h) + v/(12hL)). Selective recomputation
    redoes the attention scores and attention over V in the forward, 4Bs²h per layer (Eq. 8:
    72·BLsh²·(1 + s/(3h) + v/(12hL))); full recomputation redoes each layer's whole forward,
    24Bsh² + 4Bs²h per layer. The micro-batch B cancels. Returns a dimensionless fraction
    (0.027 means 2.7 % more FLOPs than the model needs).
    """
    recompute = _check_recompute(recompute)
    s = integer("seq_len", seq_len, 1)
    h = integer("d_model", d_model, 1)
    L = integer("n_layers", n_layers, 1)
    v = integer("vocab_size", vocab_size, 1)
    model = 1 + s / (6 * h) + v / (12 * h * L)  # Eq. 7 divided by 72·BLsh²
    if recompute == "none":
        return 0.0
    if recompute == "selective":
        return (1 + s / (3 * h) + v / (12 * h * L)) / model - 1  # Eq. 8 / Eq. 7 − 1
    return (24 * (1 + s / (6 * h)) / 72) / model  # one more forward of every layer


def reference_gpt_activation_bytes_per_layer(cfg: TransformerConfig, micro_batch: int,
                                             recompute: str = "none") -> int:
    """Predicted bytes one block of :class:`labutils.nn.GPT` keeps, to the byte (fp32, no dropout).

    The formula (e = 4, dropout off) plus two small terms the paper leaves out: the LayerNorm
    statistics (mean and 1/std, 2 × 2 LayerNorms × sb fp32 values) and the (s, s) boolean causal
    mask the attention core keeps (gone with selective or full recomputation). Covers the
    LayerNorm + GELU + learned-position variant (the tiny config); other variants raise.

    With grouped-query attention the reference GPT repeats each K/V head for its query group
    (``repeat_interleave``) before the matmuls, and the matmuls keep the repeated, full-width K
    and V: the count is that of multi-head attention. A fused GQA kernel keeps only the kv
    heads, which ``activation_bytes_per_layer(..., n_kv_heads=...)`` counts.
    """
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__} ({cfg!r})")
    if cfg.norm != "layernorm" or cfg.mlp != "gelu" or cfg.positional != "learned":
        raise ValueError("reference_gpt_activation_bytes_per_layer covers norm='layernorm', "
                         "mlp='gelu', positional='learned' only")
    if cfg.ffn_dim != 4 * cfg.d_model:
        raise ValueError(f"the formula assumes d_ff = 4·d_model, got d_ff={cfg.ffn_dim}")
    recompute = _check_recompute(recompute)
    s, b = cfg.seq_len, integer("micro_batch", micro_batch, 1)
    base = activation_bytes_per_layer(s, b, cfg.d_model, cfg.n_heads, recompute=recompute,
                                      bytes_per_element=4, dropout=False)
    if recompute == "full":
        return base
    ln_stats = 2 * 2 * s * b * 4  # two LayerNorms, mean and rstd, fp32
    mask = s * s if recompute == "none" else 0  # torch.bool causal mask, 1 byte per entry
    return base + ln_stats + mask


# ----------------------------------------------------------------------------------------------
# The reference GPT's forward pass with recomputation
# ----------------------------------------------------------------------------------------------


def _block_selective(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One pre-norm block with only the attention core checkpointed (Korthikanti's "selective")."""
    attn = block.attn
    B, T, C = x.shape
    q, k, v = attn.qkv(block.norm1(x))  # (B, nh, T, hs) each
    z = checkpoint(attn.core, q, k, v, use_reentrant=False)  # (B, nh, T, hs)
    x = x + attn.wo(z.transpose(1, 2).reshape(B, T, C))
    return x + block.mlp(block.norm2(x))


def block_forward(block: torch.nn.Module, x: torch.Tensor, recompute: str = "none") -> torch.Tensor:
    """Run one :class:`labutils.nn.Block` with no, selective or full activation recomputation."""
    recompute = _check_recompute(recompute)
    if recompute == "none":
        return block(x)
    if recompute == "full":
        return checkpoint(block, x, use_reentrant=False)  # keep x, recompute the whole block
    return _block_selective(block, x)


def gpt_forward(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor | None = None,
                recompute: str = "none") -> tuple[torch.Tensor, torch.Tensor | None]:
    """:meth:`labutils.nn.GPT.forward` with recomputation applied to every block.

    Same outputs as ``model(idx, targets)`` (a test checks loss and gradients).
    """
    recompute = _check_recompute(recompute)
    B, T = idx.shape
    x = model.tok_emb(idx)  # (B, T, C)
    if model.pos_emb is not None:
        x = x + model.pos_emb(torch.arange(T, device=idx.device))
    for block in model.blocks:
        x = block_forward(block, x, recompute)
    logits = model.head(model.norm_f(x))  # (B, T, V)
    loss = None
    if targets is not None:
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
    return logits, loss


# ----------------------------------------------------------------------------------------------
# Measuring memory on CPU
# ----------------------------------------------------------------------------------------------


class LiveTensorTracker(TorchDispatchMode):
    """Track the bytes of every tensor storage created by an op while the mode is active.

    After each op it forgets storages that have been freed, so ``live_bytes`` is the memory
    currently held by tensors created inside the mode, and ``peak_bytes`` its maximum over the
    ops run so far (views and in-place results share an input's storage and add nothing). On CPU, PyTorch keeps no allocator statistics; this is our
    ``torch.cuda.max_memory_allocated``. Tensors created before entering (parameters, inputs)
    are not counted. Cost: O(live storages) per op, fine for small models.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self._live_bytes = 0
        self.peak_bytes = 0

    @property
    def live_bytes(self) -> int:
        """Bytes of tracked storages alive now."""
        self._prune()
        return self._live_bytes

    def _prune(self) -> None:
        dead = [k for k, (ref, _) in self._live.items() if ref.expired()]
        for k in dead:
            self._live_bytes -= self._live.pop(k)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        # Forget freed storages first: a new tensor may reuse a freed one's address.
        self._prune()
        # A view or an in-place result shares an input's storage: no new memory.
        inputs = {t.untyped_storage().data_ptr()
                  for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                st = t.untyped_storage()
                key = st.data_ptr()
                if key and key not in self._live and key not in inputs:
                    self._live[key] = (StorageWeakRef(st), st.nbytes())
                    self._live_bytes += st.nbytes()
        self.peak_bytes = max(self.peak_bytes, self._live_bytes)
        return out

    def reset_peak(self) -> None:
        """Forget the peak; the next ops start a new maximum from the current live bytes."""
        self.peak_bytes = self.live_bytes


@dataclass(frozen=True)
class ActivationMeasurement:
    """One forward + backward of the reference GPT, measured on CPU (or CUDA when asked)."""

    recompute: str
    micro_batch: int
    n_layers: int
    held_after_forward_bytes: int  # bytes created by the forward and still alive before backward
    peak_bytes: int  # peak bytes created during forward + backward (CPU tracker or CUDA allocator)
    step_time_s: float  # median wall time of forward + backward, seconds
    device: str


def measure_activations(cfg: TransformerConfig, micro_batch: int, recompute: str = "none", *,
                        repeats: int = 1, device: str = "cpu", seed: int = 0) -> ActivationMeasurement:
    """Measure memory and time of forward + backward for ``GPT(cfg)`` with ``recompute``.

    On CPU, memory comes from :class:`LiveTensorTracker` (one tracked step); on CUDA from
    ``torch.cuda.max_memory_allocated`` minus the memory allocated before the step. Timing runs
    ``repeats`` untracked steps and reports the median (seconds).
    """
    from labutils.nn import GPT

    recompute = _check_recompute(recompute)
    mb = integer("micro_batch", micro_batch, 1)
    reps = integer("repeats", repeats, 1)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GPT(cfg).to(device)
    idx = torch.randint(0, cfg.vocab_size, (mb, cfg.seq_len), generator=gen).to(device)
    tgt = torch.randint(0, cfg.vocab_size, (mb, cfg.seq_len), generator=gen).to(device)

    def step() -> None:
        _, loss = gpt_forward(model, idx, tgt, recompute)
        loss.backward()

    step()  # warm-up, and creates .grad so the tracked step allocates no new gradient buffers
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        _, loss = gpt_forward(model, idx, tgt, recompute)
        torch.cuda.synchronize()
        held = torch.cuda.memory_allocated() - base
        loss.backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del loss
    else:
        with LiveTensorTracker() as tracker:
            _, loss = gpt_forward(model, idx, tgt, recompute)
            held = tracker.live_bytes
            loss.backward()
            del loss
        peak = tracker.peak_bytes
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    return ActivationMeasurement(recompute, mb, cfg.n_layers, int(held), int(peak),
                                 times[len(times) // 2], device)


def measured_activation_bytes_per_layer(cfg: TransformerConfig, micro_batch: int,
                                        recompute: str = "none") -> int:
    """Bytes one block keeps for backward, measured: held(L = 2) − held(L = 1) on CPU.

    Differencing two depths cancels the embedding, final norm, logits and loss, leaving exactly
    what one more block adds.
    """
    from dataclasses import replace

    one = measure_activations(replace(cfg, n_layers=1), micro_batch, recompute)
    two = measure_activations(replace(cfg, n_layers=2), micro_batch, recompute)
    return two.held_after_forward_bytes - one.held_after_forward_bytes


def accumulated_gradients(model: torch.nn.Module, idx: torch.Tensor, targets: torch.Tensor,
                          micro_batch: int) -> list[torch.Tensor]:
    """Gradients of the mean loss over ``idx`` (B, T), computed ``micro_batch`` rows at a time.

    Gradient accumulation (lecture 001): each micro-batch's loss is scaled by its share of the
    batch, and backward adds into ``.grad``, so the result equals one backward over the whole
    batch while only one micro-batch's activations are alive at a time. Returns copies of the
    gradients in ``model.parameters()`` order (``.grad`` is left cleared).
    """
    B = idx.shape[0]
    mb = integer("micro_batch", micro_batch, 1, B)
    if B % mb:
        raise ValueError(f"micro_batch={mb} must divide the batch size {B}")
    model.zero_grad(set_to_none=True)
    for start in range(0, B, mb):
        _, loss = model(idx[start:start + mb], targets[start:start + mb])
        (loss * (mb / B)).backward()  # mean over the whole batch = Σ (mb/B)·mean over micro-batch
    grads = [p.grad.detach().clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return grads
