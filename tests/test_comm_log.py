"""The one communication log (labutils.parallel.comm_log): records, and what each chapter reads."""

from __future__ import annotations

import pytest

from labutils.parallel import comm_log, demos
from labutils.parallel.collectives import ring_all_reduce_bytes_per_rank
from labutils.parallel.launch import launch


def test_log_answers_each_chapters_question():
    with comm_log.recording() as log:
        comm_log.record("send", 10, 4, 2, "forward")
        comm_log.record("recv", 10, 4, 2, "forward")
        comm_log.record("send", 3, 4, 2, "backward")
        comm_log.record("all_reduce", 100, 2, 4, "forward")
        comm_log.record("all_gather", 100, 2, 4)
    assert log.sent_bytes() == 52 and log.sent_bytes("forward") == 40
    assert log.received_bytes() == 40 and log.messages_sent() == 2
    assert log.calls == [("all_reduce", "forward", 100), ("all_gather", "", 100)]
    assert log.count("all_reduce", "forward") == 1 and log.count("all_reduce", "backward") == 0
    assert log.elements() == 200
    # ZeRO's convention: an all-reduce of n moves 2n, an all-gather n
    assert log.volume_elements() == 300 and log.volume_bytes() == 600
    assert log.by_op() == {"all_reduce": 200, "all_gather": 100}
    assert log.by_group() == {"all_reduce over 4": 200, "all_gather over 4": 100}
    assert log.ring_bytes_sent() == pytest.approx(300 * 2 * 3 / 4)


def test_nothing_is_recorded_outside_a_block_and_blocks_nest():
    comm_log.record("send", 1, 4, 2)  # no open log: dropped
    with comm_log.recording() as outer:
        with comm_log.recording() as inner:
            comm_log.record("send", 1, 4, 2)
        comm_log.record("send", 1, 4, 2)
    assert len(inner.records) == 1 and len(outer.records) == 2
    with pytest.raises(ValueError, match="op must be one of"):
        comm_log.record("broadcast", 1, 4, 2)


def test_ring_messages_are_logged_on_real_ranks():
    out = launch(demos.logged_ring_all_reduce, 3, 999, timeout_s=60)
    for sent, messages in out:
        assert sent == ring_all_reduce_bytes_per_rank(4 * 999, 3)
        assert messages == 2 * (3 - 1)
