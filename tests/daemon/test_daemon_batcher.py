"""Batcher bookkeeping: seq order, gaps, restarts, bounded queues and their overload policies, fair batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.daemon.batcher import Batcher, BatcherPolicy
from streamer.daemon.protocol import IngestMessage


def data(stream: str, seq: int) -> IngestMessage:
    return IngestMessage(stream, seq, "data", 16000, 1, "int16", None, np.zeros((160, 1), np.int16))


def codes(batcher: Batcher, message: IngestMessage) -> list[str]:
    return [notice.code for notice in batcher.add(message, 0.0)]


def test_in_order_messages_queue_without_notices() -> None:
    batcher = Batcher(BatcherPolicy())
    assert [codes(batcher, data("a", seq)) for seq in (5, 6, 7)] == [[], [], []]
    assert batcher.queued == 3


def test_gap_is_reported_and_with_reset_policy_queues_a_reset_first() -> None:
    batcher = Batcher(BatcherPolicy(gap_policy="reset"))
    batcher.add(data("a", 0), 0.0)
    notices = batcher.add(data("a", 3), 0.0)
    assert [(n.code, n.accepted) for n in notices] == [("gap", True)]
    assert "2 message(s) missing" in notices[0].message
    kinds = [batcher.take(10)[0].message.kind for _ in range(3)]
    assert kinds == ["data", "reset", "data"]


def test_old_seq_is_refused_and_seq_zero_restarts_the_stream() -> None:
    batcher = Batcher(BatcherPolicy())
    for seq in range(3):
        batcher.add(data("a", seq), 0.0)
    refused = batcher.add(data("a", 1), 0.0)
    assert [(n.code, n.accepted) for n in refused] == [("bad_seq", False)]
    restarted = batcher.add(data("a", 0), 0.0)
    assert [(n.code, n.accepted) for n in restarted] == [("reset", True)]
    assert batcher.queued == 5  # 3 data + synthetic reset + data


def test_full_queue_drops_oldest_or_refuses_newest() -> None:
    drop = Batcher(BatcherPolicy(max_queued_per_stream=2, overload_policy="drop_oldest"))
    refuse = Batcher(BatcherPolicy(max_queued_per_stream=2, overload_policy="refuse_newest"))
    for batcher in (drop, refuse):
        batcher.add(data("a", 0), 0.0)
        batcher.add(data("a", 1), 0.0)
    dropped = drop.add(data("a", 2), 0.0)
    assert [(n.code, n.seq, n.accepted) for n in dropped] == [("overload", 0, True)]
    assert drop.queued == 2 and drop.queued_bytes == 2 * 320  # bounded in chunks and in bytes
    assert [item.message.seq for item in (drop.take(1) + drop.take(1))] == [1, 2]
    refused = refuse.add(data("a", 2), 0.0)
    assert [(n.code, n.seq, n.accepted) for n in refused] == [("overload", 2, False)]
    assert refuse.queued == 2


def test_stream_limit_refuses_new_streams() -> None:
    batcher = Batcher(BatcherPolicy(max_streams=2))
    batcher.add(data("a", 0), 0.0)
    batcher.add(data("b", 0), 0.0)
    assert [(n.code, n.accepted) for n in batcher.add(data("c", 0), 0.0)] == [("capacity", False)]


def test_idle_streams_are_evicted_only_when_their_queue_is_empty() -> None:
    batcher = Batcher(BatcherPolicy())
    batcher.add(data("a", 0), 0.0)
    batcher.add(data("b", 0), 5.0)
    assert batcher.evict_idle(3.0, now_s=6.0) == []  # a is old but still has a chunk waiting
    batcher.take(2)
    assert batcher.evict_idle(3.0, now_s=6.0) == ["a"]
    assert batcher.evict_idle(3.0, now_s=9.0) == ["b"]
    assert len(batcher) == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 3)), min_size=1, max_size=60), st.integers(1, 4))
def test_batches_hold_one_item_per_stream_and_keep_each_stream_in_order(
    sends: list[tuple[str, int]], max_batch: int
) -> None:
    batcher = Batcher(BatcherPolicy(max_queued_per_stream=1000))
    next_seq: dict[str, int] = {}
    for stream, count in sends:
        for _ in range(count):
            seq = next_seq.get(stream, 0)
            next_seq[stream] = seq + 1
            assert batcher.add(data(stream, seq), 0.0) == []
    assert batcher.queued_bytes == 320 * batcher.queued
    seen: dict[str, list[int]] = {}
    while batcher.queued:
        batch = batcher.take(max_batch)
        ids = [item.stream_id for item in batch]
        assert 0 < len(batch) <= max_batch and len(ids) == len(set(ids))
        for item in batch:
            seen.setdefault(item.stream_id, []).append(item.message.seq)
    assert seen == {stream: list(range(count)) for stream, count in next_seq.items()}
    assert batcher.queued_bytes == 0
