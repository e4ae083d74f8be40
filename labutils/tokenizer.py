"""Byte-level byte-pair encoding (BPE): text -> token ids, the first step of every forward pass
(Chapter 1, embeddings).

A GPT reads integers, not text. Byte-level BPE (GPT-2's input representation, Radford et al.
2019, "Input Representation"; BPE from Sennrich et al. 2016) starts from the 256 possible UTF-8
bytes, so any string can be encoded, and learns merges: repeatedly, the most frequent adjacent
pair of tokens in a training text becomes one new token, with the next free id. Encoding applies
the learned merges in the order they were learned. Each id then selects one row of the model's
embedding table (``GPT.tok_emb.weight[id]``), the "Token String | Token ID | Embedding" table of
Lecture 3, COMSE6998 *Lecture 9* ("LLM pre-training at a high level").

This is the textbook algorithm, without GPT-2's extra rule that keeps merges from crossing
character categories (letters, digits, punctuation); it is for reading, not for speed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from labutils.validate import integer

N_BYTES = 256  # ids 0..255 are the raw bytes; merge i creates id 256 + i


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids`` (left to right)."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@dataclass(frozen=True)
class BPETokenizer:
    """A byte-level BPE vocabulary: the 256 bytes plus one token per learned merge."""

    merges: tuple[tuple[int, int], ...]  # merge i joins this pair of ids into id 256 + i

    def __post_init__(self) -> None:
        for i, (a, b) in enumerate(self.merges):
            integer(f"merges[{i}][0]", a, 0, N_BYTES + i - 1)
            integer(f"merges[{i}][1]", b, 0, N_BYTES + i - 1)

    @property
    def vocab_size(self) -> int:
        return N_BYTES + len(self.merges)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token id stands for."""
        integer("token_id", token_id, 0, self.vocab_size - 1)
        if token_id < N_BYTES:
            return bytes([token_id])
        a, b = self.merges[token_id - N_BYTES]
        return self.token_bytes(a) + self.token_bytes(b)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: its UTF-8 bytes, then every merge in the order learned."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = list(text.encode("utf-8"))
        for i, pair in enumerate(self.merges):
            ids = _merge(ids, pair, N_BYTES + i)
        return ids

    def decode(self, ids: list[int]) -> str:
        """The text of a list of token ids (invalid UTF-8 is shown as U+FFFD)."""
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def train_bpe(text: str, n_merges: int) -> BPETokenizer:
    """Learn up to ``n_merges`` merges on ``text``: each round, the most frequent adjacent pair
    (ties: the pair seen first) becomes a new token. Stops early when no pair occurs twice."""
    if not isinstance(text, str) or not text:
        raise ValueError("text must be a non-empty str to learn merges from")
    integer("n_merges", n_merges, 0, 100_000)
    ids = list(text.encode("utf-8"))
    merges: list[tuple[int, int]] = []
    for _ in range(n_merges):
        counts = Counter(zip(ids, ids[1:]))
        if not counts:
            break
        pair, count = counts.most_common(1)[0]  # most_common keeps first-seen order on ties
        if count < 2:
            break
        ids = _merge(ids, pair, N_BYTES + len(merges))
        merges.append(pair)
    return BPETokenizer(tuple(merges))
