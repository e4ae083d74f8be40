"""The small reference GPT shared by every chapter: one readable file, in the spirit of nanoGPT.

It follows :class:`labutils.model.TransformerConfig` exactly, so
``labutils.model.count_params(cfg)`` equals the number of parameters this module holds (a test
checks it). Attention is written with explicit matmuls by default, so that
``torch.utils.flop_counter`` sees every FLOP (on CPU it counts 0 for
``scaled_dot_product_attention``; see ``DESIGN.md``). ``attn_impl="sdpa"`` uses PyTorch's fused
kernel instead, which is what you want for speed on a GPU.

Shapes use B = batch, T = sequence, C = d_model, nh = heads, hs = head size, F = MLP width,
V = vocabulary.

``GPT(cfg, parametrization=...)`` builds the same model under a
:class:`labutils.mup.Parametrization` (Chapter 10, muP): init stds, multipliers and the attention
scale then follow the lecture's muP table (:func:`labutils.mup.layer_hyperparams`), and
:func:`labutils.mup.make_adamw` builds the matching optimizer. Without one, this is GPT-2's
standard parametrization (SP), init std 0.02 at every width.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from labutils.model import TransformerConfig
from labutils.mup import Parametrization, hyperparam_table, layer_kind, sp

ATTN_IMPLS = ("math", "sdpa")
_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8)


def make_norm(cfg: TransformerConfig) -> nn.Module:
    """LayerNorm (with or without its bias) or RMSNorm (scale only), as ``cfg.norm`` says."""
    if cfg.norm == "layernorm":
        return nn.LayerNorm(cfg.d_model, bias=cfg.bias)
    return nn.RMSNorm(cfg.d_model)


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for rotary embeddings (Su et al. 2021), each of shape (T, hs/2)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (T, hs/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of features of ``x`` (B, nh, T, hs) by position-dependent angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, nh, T, hs/2) each
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (B, nh, T, hs/2, 2)
    return rotated.flatten(-2)  # (B, nh, T, hs)


class CausalSelfAttention(nn.Module):
    """Causal self-attention with separate Q, K, V and output projections.

    Separate projections (rather than one fused QKV matrix) keep the lecture's table
    (Q = xW^Q, K = xW^K, V = xW^V, Out = ZW^O) visible, and make tensor parallelism easy to read.
    With grouped-query attention (``cfg.n_kv_heads < cfg.n_heads``, Ainslie et al. 2023) W^K and
    W^V have ``n_kv_heads`` heads; :meth:`qkv` repeats each K/V head for the
    ``cfg.query_group_size`` query heads that share it, so :meth:`core` is the same either way.
    """

    def __init__(self, cfg: TransformerConfig, attn_impl: str = "math") -> None:
        super().__init__()
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")
        self.n_heads, self.head_dim, self.attn_impl = cfg.n_heads, cfg.head_dim, attn_impl
        self.n_kv_heads = cfg.n_kv_heads
        self.use_rope = cfg.positional == "rope"
        self.scale_divisor = math.sqrt(cfg.head_dim)  # SP: q·k / √d_head; muP changes it
        d = cfg.d_model
        self.wq = nn.Linear(d, d, bias=cfg.bias)
        self.wk = nn.Linear(d, cfg.kv_dim, bias=cfg.bias)
        self.wv = nn.Linear(d, cfg.kv_dim, bias=cfg.bias)
        self.wo = nn.Linear(d, d, bias=cfg.bias)
        self.logits_tap = nn.Identity()
        if self.use_rope:
            cos, sin = rope_tables(cfg.seq_len, cfg.head_dim)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q, K, V of ``x`` (B, T, C), each (B, nh, T, hs): projected, rotated (RoPE) and, with
        grouped-query attention, each K/V head repeated for the query heads of its group."""
        B, T, _ = x.shape

        def heads(t: torch.Tensor, n: int) -> torch.Tensor:
            return t.view(B, T, n, self.head_dim).transpose(1, 2)  # (B, n, T, hs)

        q = heads(self.wq(x), self.n_heads)
        k, v = heads(self.wk(x), self.n_kv_heads), heads(self.wv(x), self.n_kv_heads)
        if self.use_rope:
            q = apply_rope(q, self.rope_cos[:T], self.rope_sin[:T])
            k = apply_rope(k, self.rope_cos[:T], self.rope_sin[:T])
        group = self.n_heads // self.n_kv_heads
        if group > 1:  # K/V head j serves query heads j·group … (j+1)·group − 1
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        return q, k, v

    def core(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(scale · Q Kᵀ + causal mask) V on (B, nh, T, hs) tensors -> (B, nh, T, hs)."""
        if self.attn_impl == "sdpa":
            default = self.scale_divisor == math.sqrt(self.head_dim)
            return F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=None if default else 1.0 / self.scale_divisor)
        T = q.shape[-2]
        scores = (q @ k.transpose(-2, -1)) / self.scale_divisor  # (B, nh, T, T)
        scores = self.logits_tap(scores)  # identity; hooks read the logits here (Chapter 10)
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=-1) @ v  # (B, nh, T, hs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        z = self.core(*self.qkv(x))  # (B, nh, T, hs)
        return self.wo(z.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """GELU MLP (two matrices) or SwiGLU MLP (three matrices: gate, up, down)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        d, f = cfg.d_model, cfg.ffn_dim
        self.swiglu = cfg.mlp == "swiglu"
        self.fc_in = nn.Linear(d, f, bias=cfg.bias)  # W1 (the "up" projection)
        if self.swiglu:
            self.fc_gate = nn.Linear(d, f, bias=cfg.bias)  # W3 in LLaMA's code
        self.fc_out = nn.Linear(f, d, bias=cfg.bias)  # W2 (the "down" projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            h = F.silu(self.fc_gate(x)) * self.fc_in(x)  # (B, T, F)
        else:
            h = F.gelu(self.fc_in(x))  # (B, T, F)
        return self.fc_out(h)  # (B, T, C)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: TransformerConfig, attn_impl: str = "math") -> None:
        super().__init__()
        self.norm1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg, attn_impl)
        self.norm2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """A decoder-only language model built from a :class:`TransformerConfig`.

    ``forward(idx, targets=None)`` takes token ids ``idx`` of shape (B, T) with T <= seq_len and
    returns ``(logits, loss)``: logits (B, T, V), and the mean next-token cross-entropy in nats
    when ``targets`` (B, T) is given, else ``None``.
    """

    def __init__(self, cfg: TransformerConfig, attn_impl: str = "math",
                 parametrization: Parametrization | None = None) -> None:
        super().__init__()
        if not isinstance(cfg, TransformerConfig):
            raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__} ({cfg!r})")
        if parametrization is not None and not isinstance(parametrization, Parametrization):
            raise TypeError("parametrization must be a labutils.mup.Parametrization or None, got "
                            f"{type(parametrization).__name__}")
        self.cfg = cfg
        self.parametrization = parametrization
        self.input_mult = self.output_mult = 1.0
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model) if cfg.positional == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg, attn_impl) for _ in range(cfg.n_layers))
        self.norm_f = make_norm(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tied_embeddings:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init for the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("wo.weight", "fc_out.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))
        if parametrization is not None:
            self._apply_parametrization(parametrization)

    @torch.no_grad()
    def _apply_parametrization(self, param: Parametrization) -> None:
        """Rescale the SP init to the table's stds, set the multipliers and the attention scale.

        Rescaling (rather than drawing again) keeps the random draws of the SP model, so at the
        base width SP and muP are the same model bit for bit.
        """
        if not isinstance(param, Parametrization):
            raise TypeError(f"parametrization must be a labutils.mup.Parametrization, got "
                            f"{type(param).__name__}")
        cfg = self.cfg
        if cfg.tied_embeddings:
            raise ValueError("a parametrization needs tied_embeddings=False: muP treats the "
                             "embedding (input) and the readout (output) as different layers")
        table = hyperparam_table(param, cfg.d_model, cfg.n_layers)
        # What __init__ drew: the SP table (GPT-2's 0.02, and 0.02/√(2L) for residual outputs).
        sp_std = {k: h.init_std for k, h in
                  hyperparam_table(sp(cfg.d_model, cfg.head_dim), cfg.d_model, cfg.n_layers).items()}
        for name, p in self.named_parameters():
            kind = layer_kind(name, p)
            if p.ndim < 2 and not name.startswith(("tok_emb.", "pos_emb.")):
                continue  # biases and norm gains keep their constant init (0 and 1)
            if param.zero_init and name.endswith("wq.weight"):
                p.zero_()  # TP-V's zero query: attention starts uniform at every width
            else:
                p.mul_(table[kind].init_std / sp_std[kind])
        self.input_mult = table["embedding"].multiplier
        self.output_mult = table["readout"].multiplier
        for block in self.blocks:
            block.attn.scale_divisor = param.attention_divisor(cfg.head_dim)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in _INT_DTYPES:
            raise TypeError(
                "idx must be an integer tensor of token ids with shape (B, T), got "
                f"{type(idx).__name__} {getattr(idx, 'dtype', '')} {tuple(getattr(idx, 'shape', ()))}"
            )
        B, T = idx.shape
        if not 1 <= T <= self.cfg.seq_len:
            raise ValueError(f"idx sequence length must be in [1, cfg.seq_len={self.cfg.seq_len}], got {T}")
        if targets is not None and (
            not isinstance(targets, torch.Tensor) or targets.shape != idx.shape or targets.dtype not in _INT_DTYPES
        ):
            raise TypeError(
                f"targets must be an integer tensor with the shape of idx {tuple(idx.shape)}, got "
                f"{type(targets).__name__} {getattr(targets, 'dtype', '')} {tuple(getattr(targets, 'shape', ()))}"
            )
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))  # (T, C) broadcast over B
        if self.input_mult != 1.0:
            x = x * self.input_mult  # muP's α_in (Chapter 10)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.norm_f(x))  # (B, T, V)
        if self.output_mult != 1.0:
            logits = logits * self.output_mult  # muP's α_out / ñ (Chapter 10)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return logits, loss
