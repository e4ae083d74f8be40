"""Context parallelism: ring attention on torch.distributed, load balancing, and its cost model.

Chapter 8. With context parallelism (CP) of degree p, each rank holds 1/p of the sequence's
tokens: its queries Q_r stay put, while the key/value blocks travel around a ring of ranks
(Liu et al. 2023, "Ring Attention"; lecture 001, "Context Parallelism - 4D"). After p − 1
send/recv steps every rank has seen every K/V block, and the partial results are combined with
the online-softmax rule (:func:`labutils.attention.merge_partials`), so the output is exactly
that of ordinary attention.

* :func:`ring_attention` runs inside a worker started by :func:`labutils.parallel.launch`; it
  posts the next block's isend/irecv before computing on the current block, so the transfer can
  overlap the compute.
* With a causal mask a contiguous split is unbalanced: rank 0 sees only its own keys, the last
  rank sees all of them. The **zigzag** split (2p chunks, rank r holds chunks r and 2p − 1 − r;
  the load-balanced layout of Llama 3's CP and of PyTorch's causal CP) gives every rank the same
  number of unmasked query-key pairs: :func:`causal_work_per_rank`.
* The cost model prices one ring step: attention FLOPs of one block against the bytes of one
  K/V block over a link, and finds the tokens per rank above which the transfer hides behind
  the compute (:func:`compute_bound_tokens_per_rank`).

The backward is distributed too, by recomputation (:func:`_ring_backward`): a second ring
carries each K/V block with its gradient accumulators, and the last hop brings them home.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from labutils.activations import activation_bytes_per_layer
from labutils.attention import block_attention, causal_mask, empty_partial, merge_partials
from labutils.parallel import comm_log
from labutils.parallel.collectives import exchange
from labutils.parallel.grid import rank_device
from labutils.validate import integer, non_negative, number, positive

SCHEMES = ("contiguous", "zigzag")

# ----------------------------------------------------------------------------------------------
# Sequence layouts
# ----------------------------------------------------------------------------------------------


def _check_scheme(scheme: object) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme  # type: ignore[return-value]


def chunks_of_rank(world_size: int, rank: int, scheme: str = "zigzag") -> list[int]:
    """Indices of the sequence chunks ``rank`` holds.

    contiguous: p chunks, rank r holds [r]; zigzag: 2p chunks, rank r holds [r, 2p − 1 − r].
    """
    p = integer("world_size", world_size, 1)
    r = integer("rank", rank, 0, p - 1)
    return [r] if _check_scheme(scheme) == "contiguous" else [r, 2 * p - 1 - r]


def n_chunks(world_size: int, scheme: str = "zigzag") -> int:
    """How many equal chunks the sequence is cut into: p (contiguous) or 2p (zigzag)."""
    p = integer("world_size", world_size, 1)
    return p if _check_scheme(scheme) == "contiguous" else 2 * p


def positions_of_rank(seq_len: int, world_size: int, rank: int,
                      scheme: str = "zigzag") -> torch.Tensor:
    """Global token positions (int64, increasing) held by ``rank``; seq_len must divide evenly."""
    s = integer("seq_len", seq_len, 1)
    n = n_chunks(world_size, scheme)
    if s % n:
        raise ValueError(f"seq_len={s} must be a multiple of {n} chunks ({scheme}, "
                         f"world_size={world_size})")
    c = s // n
    return torch.cat([torch.arange(i * c, (i + 1) * c)
                      for i in chunks_of_rank(world_size, rank, scheme)])


def shard(x: torch.Tensor, world_size: int, rank: int, scheme: str = "zigzag") -> torch.Tensor:
    """The tokens of ``x`` (shape (..., s, d)) that ``rank`` holds, in position order."""
    return x[..., positions_of_rank(x.shape[-2], world_size, rank, scheme), :]


def unshard(shards: list[torch.Tensor], scheme: str = "zigzag") -> torch.Tensor:
    """Inverse of :func:`shard`: put every rank's tokens back at their global positions."""
    p = len(shards)
    s = sum(t.shape[-2] for t in shards)
    out = torch.empty(*shards[0].shape[:-2], s, shards[0].shape[-1], dtype=shards[0].dtype)
    for r, t in enumerate(shards):
        out[..., positions_of_rank(s, p, r, scheme), :] = t
    return out


# ----------------------------------------------------------------------------------------------
# Work per rank with a causal mask
# ----------------------------------------------------------------------------------------------


def causal_pairs(positions: torch.Tensor) -> int:
    """Unmasked (query, key) pairs for queries at ``positions``: Σ (q + 1) (q sees keys 0…q)."""
    return int((positions + 1).sum())


def causal_work_per_rank(seq_len: int, world_size: int, scheme: str = "zigzag") -> list[int]:
    """Unmasked query-key score pairs each rank computes in causal attention (closed form).

    contiguous, c = s/p tokens per rank: W_r = c²·r + c(c + 1)/2 (grows with r: the last rank
    does ≈ 2p − 1 times the first rank's work).
    zigzag, c = s/(2p) tokens per chunk: W_r = c²·r + c(c+1)/2 + c²·(2p−1−r) + c(c+1)/2 = c·(s + 1),
    the same on every rank. Either way Σ_r W_r = s(s + 1)/2.
    """
    s = integer("seq_len", seq_len, 1)
    p = integer("world_size", world_size, 1)
    n = n_chunks(p, scheme)
    if s % n:
        raise ValueError(f"seq_len={s} must be a multiple of {n} chunks ({scheme}, world_size={p})")
    c = s // n
    if scheme == "contiguous":
        return [c * c * r + c * (c + 1) // 2 for r in range(p)]
    return [c * (s + 1) for _ in range(p)]


def causal_blocks_per_rank(world_size: int, scheme: str = "zigzag") -> list[dict[str, int]]:
    """Per rank, how many (query chunk, key chunk) blocks are fully visible, cut by the diagonal
    (half visible), or fully masked (skipped) in causal attention.

    contiguous: rank r has r full, 1 diagonal, p − 1 − r skipped blocks.
    zigzag: every rank has 2p − 1 full, 2 diagonal and 2p − 1 skipped blocks (of 4p).
    """
    p = integer("world_size", world_size, 1)
    n = n_chunks(p, scheme)
    out = []
    for r in range(p):
        counts = {"full": 0, "diagonal": 0, "skipped": 0}
        for qi in chunks_of_rank(p, r, scheme):
            for kj in range(n):
                counts["full" if kj < qi else "diagonal" if kj == qi else "skipped"] += 1
        out.append(counts)
    return out


# ----------------------------------------------------------------------------------------------
# Ring attention on torch.distributed
# ----------------------------------------------------------------------------------------------


@dataclass
class RingWork:
    """The compute one rank did in :func:`ring_attention`'s forward (what it sent is in the
    comm log: :func:`labutils.parallel.comm_log.recording`)."""

    score_pairs: int = 0  # unmasked (query, key) score entries computed
    blocks_computed: int = 0
    blocks_skipped: int = 0


def _exchange(send: torch.Tensor, recv: torch.Tensor, direction: str, wait: bool) -> list:
    """Send ``send`` to rank r + 1 and receive ``recv`` from rank r − 1 (both logged)."""
    p, r = dist.get_world_size(), dist.get_rank()
    return exchange(send, (r + 1) % p, recv, (r - 1) % p, direction, wait)


def _ring_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scheme: str,
                  work: RingWork) -> tuple[torch.Tensor, torch.Tensor]:
    """The ring loop of :func:`ring_attention`; returns (o, logsumexp of each query's scores)."""
    p, r = dist.get_world_size(), dist.get_rank()
    s = q.shape[-2] * p
    q_pos = positions_of_rank(s, p, r, scheme).to(q.device)
    kv = torch.stack([k, v]).contiguous()  # one message per step: K and V together
    # on the device of q (labutils.attention.empty_partial allocates on the CPU)
    m, l, o = (t.to(q.device) for t in empty_partial(q, v.shape[-1]))
    for t in range(p):
        reqs, nxt = [], None
        if t < p - 1:  # start moving the block we hold while we compute on it
            nxt = torch.empty_like(kv)
            reqs = _exchange(kv, nxt, "forward", wait=False)  # overlaps the block's compute
        # the block that started on rank r - t
        k_pos = positions_of_rank(s, p, (r - t) % p, scheme).to(q.device)
        mask = causal_mask(q_pos, k_pos) if causal else None
        if mask is not None and not bool(mask.any()):
            work.blocks_skipped += 1  # fully masked: no work at all
        else:
            if mask is not None and bool(mask.all()):
                mask = None  # fully visible: no masking needed
            work.score_pairs += (int(mask.sum()) if mask is not None
                                  else q_pos.numel() * k_pos.numel())
            work.blocks_computed += 1
            m, l, o = merge_partials(m, l, o, *block_attention(q, kv[0], kv[1], mask))
        for req in reqs:
            req.wait()
        if nxt is not None:
            kv = nxt
    return o, m + torch.log(l)


def _ring_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
                   lse: torch.Tensor, do: torch.Tensor, causal: bool, scheme: str,
                   work: RingWork) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ring attention by recomputation (FlashAttention's backward, blockwise).

    The probabilities of a block are recomputed from the saved logsumexp, P = exp(S − lse).
    With D = rowsum(dO ∘ O): dV += Pᵀ·dO, dS = P ∘ (dO·Vᵀ − D), dQ += dS·K/√d,
    dK += dSᵀ·Q/√d. Each K/V block travels round the ring together with its dK, dV
    accumulators (one message of 4 blocks per step, sent after the compute: no overlap here);
    after p − 1 steps the last hop carries only dK, dV home to the block's owner.
    """
    p, r = dist.get_world_size(), dist.get_rank()
    s = q.shape[-2] * p
    scale = 1.0 / math.sqrt(q.shape[-1])
    q_pos = positions_of_rank(s, p, r, scheme).to(q.device)
    delta = (do * o).sum(dim=-1, keepdim=True)
    dq = torch.zeros_like(q)
    buf = torch.stack([k, v, torch.zeros_like(k), torch.zeros_like(v)]).contiguous()
    for t in range(p):
        k_pos = positions_of_rank(s, p, (r - t) % p, scheme).to(q.device)
        mask = causal_mask(q_pos, k_pos) if causal else None
        if mask is None or bool(mask.any()):
            kb, vb = buf[0], buf[1]
            prob = torch.exp(q @ kb.transpose(-1, -2) * scale - lse[..., None])
            if mask is not None:
                prob = prob.masked_fill(~mask, 0.0)
            buf[3] += prob.transpose(-1, -2) @ do
            ds = prob * (do @ vb.transpose(-1, -2) - delta)
            dq += ds @ kb * scale
            buf[2] += ds.transpose(-1, -2) @ q * scale
        if p > 1:  # pass the block on; on the last step only its gradients go home
            send = buf if t < p - 1 else buf[2:].contiguous()
            recv = torch.empty_like(send)
            _exchange(send, recv, "backward", wait=True)
            buf = recv
    dk, dv = (buf[0], buf[1]) if p > 1 else (buf[2], buf[3])
    return dq, dk, dv


class _RingAttention(torch.autograd.Function):
    """Ring attention with its distributed, recompute-based backward."""

    @staticmethod
    def forward(ctx, q, k, v, causal, scheme, work):  # noqa: ANN001, ANN205
        o, lse = _ring_forward(q, k, v, causal, scheme, work)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.causal, ctx.scheme, ctx.work = causal, scheme, work
        return o

    @staticmethod
    def backward(ctx, do):  # noqa: ANN001, ANN205
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = _ring_backward(q, k, v, o, lse, do.contiguous(), ctx.causal, ctx.scheme,
                                    ctx.work)
        return dq, dk, dv, None, None, None


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                   scheme: str = "zigzag", work: RingWork | None = None) -> torch.Tensor:
    """Attention of this rank's queries over the whole sequence, with K/V passed around a ring.

    ``q``, ``k``, ``v``: this rank's tokens, shape (..., s/p, d), laid out by ``scheme`` (see
    :func:`shard`). Step t = 0 … p − 1: the rank holds the K/V block that started on rank
    (r − t) mod p; it posts isend of that block to rank r + 1 and irecv of the next one from
    rank r − 1 (not on the last step), computes the partial result of its queries against the
    block it holds (skipping it if the causal mask hides all of it), merges it with
    :func:`merge_partials`, then waits for the transfer. Each rank sends p − 1 K/V blocks.

    Returns this rank's output (..., s/p, d), equal to the matching rows of ordinary attention.
    Differentiable: ``backward`` runs a second ring (:func:`_ring_backward`) and gives each
    rank the gradients of its own q, k, v.
    """
    if not dist.is_initialized():
        raise RuntimeError("no default process group: call ring_attention inside a worker run "
                           "by labutils.parallel.launch")
    scheme = _check_scheme(scheme)
    if k.shape != v.shape or q.shape != k.shape:
        raise ValueError(f"q, k and v must have the same shape (..., s/p, d), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    work = work if work is not None else RingWork()
    return _RingAttention.apply(q, k, v, causal, scheme, work)


def ring_attention_worker(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                          scheme: str = "zigzag", grad_out: torch.Tensor | None = None) -> dict:
    """Worker for :func:`labutils.parallel.launch`: take this rank's shard of the full q, k, v
    (shape (..., s, d)), run :func:`ring_attention`, return its output shard and statistics.

    With ``grad_out`` (the upstream gradient of the full output), also run the backward and
    return this rank's shards of dq, dk, dv.
    """
    p, r, device = dist.get_world_size(), dist.get_rank(), rank_device()
    work = RingWork()
    grad = grad_out is not None
    qs, ks, vs = (shard(t, p, r, scheme).to(device).detach().requires_grad_(grad)
                  for t in (q, k, v))
    with comm_log.recording() as log:
        out = ring_attention(qs, ks, vs, causal, scheme, work)
        if grad:
            out.backward(shard(grad_out, p, r, scheme).to(device))
    res = {"out": out.detach().cpu()}
    if grad:
        res.update(dq=qs.grad.cpu(), dk=ks.grad.cpu(), dv=vs.grad.cpu())
    res.update(sent_bytes=log.sent_bytes("forward"), messages_sent=log.messages_sent("forward"),
               score_pairs=work.score_pairs, blocks_computed=work.blocks_computed,
               blocks_skipped=work.blocks_skipped, backward_sent_bytes=log.sent_bytes("backward"),
               kv_block_bytes=2 * ks.numel() * ks.element_size())
    return res


def run_ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, world_size: int,
                       causal: bool = False, scheme: str = "zigzag",
                       grad_out: torch.Tensor | None = None,
                       timeout_s: float = 60.0) -> tuple[torch.Tensor, list[dict]]:
    """Launch :func:`ring_attention_worker` on ``world_size`` gloo ranks; return the full output
    (reassembled with :func:`unshard`) and each rank's results (with ``grad_out``: its dq, dk,
    dv shards, to be reassembled with :func:`unshard`)."""
    from labutils.parallel.launch import launch

    res = launch(ring_attention_worker, world_size, q, k, v, causal, scheme, grad_out,
                 timeout_s=timeout_s)
    return unshard([x["out"] for x in res], scheme), res


# ----------------------------------------------------------------------------------------------
# Cost model
# ----------------------------------------------------------------------------------------------


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
