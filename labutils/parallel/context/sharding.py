"""Context parallelism's sequence layouts: which tokens each rank holds, and the causal work
that follows (Chapter 8).

With a causal mask a contiguous split is unbalanced: rank 0 sees only its own keys, the last
rank sees all of them. The **zigzag** split (2p chunks, rank r holds chunks r and 2p − 1 − r;
the load-balanced layout of Llama 3's CP and of PyTorch's causal CP) gives every rank the same
number of unmasked query-key pairs: :func:`causal_work_per_rank`.
"""

from __future__ import annotations

import torch

from labutils.validate import integer

SCHEMES = ("contiguous", "zigzag")

# ----------------------------------------------------------------------------------------------
# Sequence layouts
# ----------------------------------------------------------------------------------------------


def check_scheme(scheme: object) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme  # type: ignore[return-value]


def chunks_of_rank(world_size: int, rank: int, scheme: str = "zigzag") -> list[int]:
    """Indices of the sequence chunks ``rank`` holds.

    contiguous: p chunks, rank r holds [r]; zigzag: 2p chunks, rank r holds [r, 2p − 1 − r].
    """
    p = integer("world_size", world_size, 1)
    r = integer("rank", rank, 0, p - 1)
    return [r] if check_scheme(scheme) == "contiguous" else [r, 2 * p - 1 - r]


def n_chunks(world_size: int, scheme: str = "zigzag") -> int:
    """How many equal chunks the sequence is cut into: p (contiguous) or 2p (zigzag)."""
    p = integer("world_size", world_size, 1)
    return p if check_scheme(scheme) == "contiguous" else 2 * p


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
