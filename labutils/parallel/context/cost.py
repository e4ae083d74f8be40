"""Context parallelism's cost model: K/V bytes per ring step, activation memory, and the tokens
per rank above which the transfer hides behind the compute (Chapter 8).

One ring step prices the attention FLOPs of one block against the bytes of one K/V block over
a link; :func:`compute_bound_tokens_per_rank` finds where the two meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from labutils.activations import activation_bytes_per_layer
from labutils.validate import integer, non_negative, number, positive

def _share(name: str, value: object) -> float:
    """A share in (0, 1]: an MFU, or the visible fraction of a causal block."""
    return number(name, value, low=0.0, high=1.0, low_open=True)


def _check_heads(d_model: object, n_heads: object, n_kv_heads: object) -> tuple[int, int, int]:
    """(h, a, kv): a divides h (equal head widths) and kv divides a (grouped-query attention:
    each K/V head serves a/kv query heads); kv = a when ``n_kv_heads`` is None."""
    h, a = integer("d_model", d_model, 1), integer("n_heads", n_heads, 1)
    if h % a:
        raise ValueError(f"n_heads={a} must divide d_model={h}")
    kv = a if n_kv_heads is None else integer("n_kv_heads", n_kv_heads, 1, a)
    if a % kv:
        raise ValueError(f"n_kv_heads={kv} must divide n_heads={a} (each K/V head serves "
                         f"n_heads/n_kv_heads query heads)")
    return h, a, kv


def kv_block_bytes(tokens: int, d_model: int, n_heads: int, n_kv_heads: int | None = None,
                   micro_batch: int = 1, bytes_per_element: int = 2) -> int:
    """Bytes of the K and V of ``tokens`` tokens: 2·b·tokens·(d_model/n_heads)·n_kv_heads·e.

    ``n_kv_heads`` < ``n_heads`` is grouped-query attention (fewer K/V heads, less to send);
    default: n_heads.
    """
    n = integer("tokens", tokens, 1)
    h, a, kv = _check_heads(d_model, n_heads, n_kv_heads)
    b = integer("micro_batch", micro_batch, 1)
    e = integer("bytes_per_element", bytes_per_element, 1)
    return 2 * b * n * (h // a) * kv * e


def ring_kv_bytes_per_rank(seq_len: int, cp: int, d_model: int, n_heads: int,
                           n_kv_heads: int | None = None, micro_batch: int = 1,
                           bytes_per_element: int = 2, *, backward: bool = False) -> int:
    """Bytes one rank sends in one layer's ring attention, in units of B = :func:`kv_block_bytes`
    (s/p) (the K and V of one rank's tokens).

    Forward: p − 1 K/V blocks, (p − 1)·B. Backward (``backward=True``, as
    :func:`_ring_backward` does it): p − 1 messages of K, V, dK, dV (2B each), then one hop of
    dK, dV home (B): (2p − 1)·B, zero when p = 1.
    """
    s, c = integer("seq_len", seq_len, 1), integer("cp", cp, 1)
    if s % c:
        raise ValueError(f"cp={c} must divide seq_len={s}")
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {backward!r}")
    block = kv_block_bytes(s // c, d_model, n_heads, n_kv_heads, micro_batch, bytes_per_element)
    if backward:
        return (2 * c - 1) * block if c > 1 else 0
    return (c - 1) * block


def cp_activation_bytes_per_layer(seq_len: int, micro_batch: int, d_model: int, n_heads: int,
                                  cp: int = 1, *, flash: bool = True, bytes_per_element: int = 2,
                                  dropout: bool = False) -> int:
    """Activation bytes one layer keeps for backward on one rank with context parallelism ``cp``.

    Each rank holds s/cp tokens, so every per-token term of Korthikanti et al. 2022 (Eq. 1, via
    :func:`labutils.activations.activation_bytes_per_layer` at seq_len s/cp) shrinks by cp.
    ``flash=True``: no score matrix is kept (the "selective" row of Table 2: FlashAttention
    recomputes it in the backward). ``flash=False``: the rank keeps the scores of its s/cp
    queries against all s keys, the paper's a·s²·b core term divided by cp.
    """
    s, c = integer("seq_len", seq_len, 1), integer("cp", cp, 1)
    if s % c:
        raise ValueError(f"cp={c} must divide seq_len={s}")
    if not isinstance(flash, bool):
        raise TypeError(f"flash must be a bool, got {type(flash).__name__} ({flash!r})")
    kw = dict(bytes_per_element=bytes_per_element, dropout=dropout)
    linear = activation_bytes_per_layer(s // c, micro_batch, d_model, n_heads,
                                        recompute="selective", **kw)
    if flash:
        return linear
    core_full = (activation_bytes_per_layer(s, micro_batch, d_model, n_heads, **kw)
                 - activation_bytes_per_layer(s, micro_batch, d_model, n_heads,
                                              recompute="selective", **kw))
    return linear + core_full // c


def block_attention_flops(tokens_per_rank: int, d_model: int, micro_batch: int = 1,
                          causal_fraction: float = 1.0) -> float:
    """Forward FLOPs of one ring step: n = s/p queries against n keys, all heads.

    QKᵀ and P·V are 2·n²·d_model FLOPs each: 4·b·n²·d_model, times the visible fraction of the
    block (0.5 for a causal zigzag step, whose blocks are half masked on average).
    """
    n = integer("tokens_per_rank", tokens_per_rank, 1)
    h = integer("d_model", d_model, 1)
    b = integer("micro_batch", micro_batch, 1)
    f = _share("causal_fraction", causal_fraction)
    return 4.0 * b * n * n * h * f


@dataclass(frozen=True)
class RingStep:
    """Seconds of one ring step: compute on one block vs moving one K/V block."""

    compute_s: float
    comm_s: float

    @property
    def hidden(self) -> bool:
        """True when the transfer fits behind the compute (the ring is compute-bound)."""
        return self.comm_s <= self.compute_s

    @property
    def step_s(self) -> float:
        """max(compute, comm): with overlap, the slower of the two sets the pace."""
        return max(self.compute_s, self.comm_s)


def ring_step(tokens_per_rank: int, d_model: int, peak_flops: float, bandwidth_bytes_per_s: float,
              *, n_heads: int = 1, n_kv_heads: int | None = None, micro_batch: int = 1,
              bytes_per_element: int = 2, mfu: float = 1.0, latency_s: float = 0.0,
              causal_fraction: float = 1.0) -> RingStep:
    """Price one step: compute = block FLOPs / (mfu·peak); comm = α + K/V block bytes / B."""
    flops = block_attention_flops(tokens_per_rank, d_model, micro_batch, causal_fraction)
    block_bytes = kv_block_bytes(tokens_per_rank, d_model, n_heads, n_kv_heads, micro_batch,
                                 bytes_per_element)
    return RingStep(flops / (_share("mfu", mfu) * positive("peak_flops", peak_flops)),
                    non_negative("latency_s", latency_s)
                    + block_bytes / positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s))


def compute_bound_tokens_per_rank(peak_flops: float, bandwidth_bytes_per_s: float, *,
                                  d_model: int = 4096, n_heads: int = 1,
                                  n_kv_heads: int | None = None, micro_batch: int = 1,
                                  bytes_per_element: int = 2, mfu: float = 1.0,
                                  latency_s: float = 0.0, causal_fraction: float = 1.0) -> float:
    """Tokens per rank n above which one K/V transfer hides behind one block's attention compute.

    Compute k_c·n² with k_c = 4·b·h·f/(mfu·F); transfer α + k_m·n with k_m = 2·b·h·(kv/a)·e/B.
    Equal at n* = (k_m + √(k_m² + 4·k_c·α)) / (2·k_c); with α = 0, n* = e·F·mfu⁻¹·(kv/a)/(2·f·B),
    independent of d_model and batch: the FLOP/s-to-bandwidth ratio of the hardware decides.
    """
    h, a, kv = _check_heads(d_model, n_heads, n_kv_heads)
    b = integer("micro_batch", micro_batch, 1)
    e = integer("bytes_per_element", bytes_per_element, 1)
    k_c = 4.0 * b * h * _share("causal_fraction", causal_fraction) / (
        _share("mfu", mfu) * positive("peak_flops", peak_flops))
    k_m = 2.0 * b * h * (kv / a) * e / positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    alpha = non_negative("latency_s", latency_s)
    return (k_m + math.sqrt(k_m * k_m + 4 * k_c * alpha)) / (2 * k_c)
