"""The shared GPT under context parallelism: every rank holds a shard of the sequence all the
way through the model (Chapter 8; trained live in Chapter 12).

Everything but attention works token by token (embeddings, norms, MLP, head, loss), so a rank
simply runs it on its own tokens. :class:`CPAttention` replaces a block's attention: Q, K and V
of the rank's tokens are projected with the *same* weights (the module shares them, and keeps
their names), rotated at the tokens' true positions, and attended with
:func:`labutils.parallel.context.ring.ring_attention` in the context-parallel group. Every
weight then gets a gradient from this rank's tokens only, so the gradients are averaged over the
context-parallel group, exactly as data parallelism averages them over batches.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from labutils.nn import GPT
from labutils.nn.gpt import CausalSelfAttention, apply_rope
from labutils.parallel.context.ring import ring_attention
from labutils.parallel.context.sharding import positions_of_rank


class CPAttention(nn.Module):
    """:class:`labutils.nn.gpt.CausalSelfAttention` on this rank's tokens, at ``positions``
    (1-D, the rank's sequence positions), with ring attention over ``group``."""

    def __init__(self, full: CausalSelfAttention, positions: torch.Tensor,
                 group: dist.ProcessGroup | None = None, scheme: str = "zigzag") -> None:
        super().__init__()
        if full.scale_divisor != full.head_dim ** 0.5 or full.attn_impl != "math":
            raise ValueError("CPAttention needs the standard 1/√d_head scale and the math kernel")
        self.n_heads, self.n_kv_heads, self.head_dim = full.n_heads, full.n_kv_heads, full.head_dim
        self.wq, self.wk, self.wv, self.wo = full.wq, full.wk, full.wv, full.wo  # shared
        self.use_rope, self.group, self.scheme = full.use_rope, group, scheme
        # Rank-specific tables are plain attributes, not buffers: a data-parallel wrapper
        # broadcasts buffers from one rank, which would give every rank rank 0's positions.
        self.positions = positions.clone()
        if self.use_rope:
            self.cos, self.sin = full.rope_cos[positions].clone(), full.rope_sin[positions].clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T/p, C)
        B, T, C = x.shape

        def heads(t: torch.Tensor, n: int) -> torch.Tensor:
            return t.view(B, T, n, self.head_dim).transpose(1, 2)  # (B, n, T/p, hs)

        q = heads(self.wq(x), self.n_heads)
        k, v = heads(self.wk(x), self.n_kv_heads), heads(self.wv(x), self.n_kv_heads)
        if self.use_rope:
            q = apply_rope(q, self.cos, self.sin)
            k = apply_rope(k, self.cos, self.sin)
        group_size = self.n_heads // self.n_kv_heads
        if group_size > 1:
            k, v = k.repeat_interleave(group_size, dim=1), v.repeat_interleave(group_size, dim=1)
        z = ring_attention(q.contiguous(), k.contiguous(), v.contiguous(), True, self.scheme,
                           group=self.group)  # (B, nh, T/p, hs)
        return self.wo(z.transpose(1, 2).reshape(B, T, C))


def shard_sequence(model: GPT, cp_rank: int, cp: int, group: dist.ProcessGroup | None = None,
                   scheme: str = "zigzag") -> torch.Tensor:
    """Give every block of ``model`` a :class:`CPAttention` (in place); return this rank's
    sequence positions (on the model's device)."""
    device = model.tok_emb.weight.device
    positions = positions_of_rank(model.cfg.seq_len, cp, cp_rank, scheme).to(device)
    for block in model.blocks:
        block.attn = CPAttention(block.attn, positions, group, scheme)
    return positions


def cp_loss(model: GPT, idx: torch.Tensor, tgt: torch.Tensor,
            positions: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over this rank's tokens: ``idx``/``tgt`` are the full (B, T)
    batch, of which the rank reads the columns ``positions``."""
    idx, tgt = idx[:, positions], tgt[:, positions]  # (B, T/p)
    x = model.tok_emb(idx)
    if model.pos_emb is not None:
        x = x + model.pos_emb(positions)
    for block in model.blocks:
        x = block(x)
    logits = model.head(model.norm_f(x))  # (B, T/p, V)
    return F.cross_entropy(logits.flatten(0, 1), tgt.reshape(-1))
