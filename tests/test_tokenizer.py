"""Tests for labutils.tokenizer: byte-level BPE (chapter 1, section 5.1)."""

from __future__ import annotations

import pytest
import torch

from labutils import tokenizer
from labutils.model import tiny_config
from labutils.nn import GPT

TEXT = "the teacher teaches the student; the student teaches the teacher. " * 4


def test_bytes_alone_encode_any_text_exactly():
    plain = tokenizer.BPETokenizer(())
    for text in ("hello", "Grüße, 世界!", ""):
        ids = plain.encode(text)
        assert ids == list(text.encode("utf-8"))
        assert plain.decode(ids) == text
    assert plain.vocab_size == 256


def test_first_merge_is_the_most_frequent_pair():
    tok = tokenizer.train_bpe("aaab aaab aaab", 1)
    # pairs: ('a','a') 6 times, ('a','b') 3, ('b',' ') 2, (' ','a') 2
    assert tok.merges == ((ord("a"), ord("a")),)
    assert tok.encode("aaab") == [256, ord("a"), ord("b")]  # left to right, no overlap


def test_merges_shorten_the_text_and_round_trip():
    tok = tokenizer.train_bpe(TEXT, 40)
    assert tok.vocab_size == 256 + len(tok.merges) and len(tok.merges) > 10
    for text in ("the teacher teaches the student", "an unseen sentence, Ünïcode too"):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    assert len(tok.encode("the teacher")) < len("the teacher".encode("utf-8"))
    assert tok.token_bytes(tok.encode("the")[0]) in (b"the", b"th", b"t")


def test_training_stops_when_no_pair_repeats():
    tok = tokenizer.train_bpe("abcdef", 10)
    assert tok.merges == ()


def test_ids_select_embedding_rows():
    tok = tokenizer.train_bpe(TEXT, 20)
    model = GPT(tiny_config(vocab_size=tok.vocab_size, d_model=8, n_heads=2))
    ids = torch.tensor(tok.encode("the student"))
    rows = model.tok_emb(ids)  # (tokens, d_model)
    assert torch.equal(rows, model.tok_emb.weight[ids])
    assert rows.shape == (len(ids), 8)


def test_bad_input():
    with pytest.raises(ValueError, match="text"):
        tokenizer.train_bpe("", 3)
    with pytest.raises(ValueError, match="n_merges"):
        tokenizer.train_bpe("abab", -1)
    with pytest.raises(TypeError, match="text"):
        tokenizer.BPETokenizer(()).encode(b"bytes")
    with pytest.raises(ValueError, match="token_id"):
        tokenizer.BPETokenizer(()).token_bytes(256)
    with pytest.raises(ValueError, match=r"merges\[0\]"):
        tokenizer.BPETokenizer(((256, 1),))  # a merge may only use ids that already exist
