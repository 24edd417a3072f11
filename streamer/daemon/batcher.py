"""Per-stream ordered queues and batch forming: seq checks, gap/overload policies, one item per stream per batch.

Pure bookkeeping (no sockets, no model): `add` files a decoded message and returns the notices to publish,
`take` pops the head of up to `max_batch` streams, oldest first, round-robin between streams with a backlog.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from streamer.daemon.protocol import IngestMessage

GapPolicy = Literal["continue", "reset", "bridge"]
OverloadPolicy = Literal["drop_oldest", "refuse_newest"]


@dataclass(slots=True)
class Item:
    """A queued message with its arrival time (monotonic seconds); `kind` 'reset' may be synthetic (gap reset)."""

    message: IngestMessage
    received_s: float
    synthetic: bool = False
    bridge_messages: int = 0  # a synthetic item standing for this many lost messages (gap_policy bridge)

    @property
    def stream_id(self) -> str:
        return self.message.stream_id


@dataclass(frozen=True, slots=True)
class Notice:
    """A status to publish: `accepted` says whether the message that caused it was queued."""

    stream_id: str
    code: str
    message: str
    seq: int | None
    accepted: bool
    resend_from: int | None = None  # code `resend`: the seq the producer should send next


@dataclass(slots=True)
class _Stream:
    queue: deque[Item] = field(default_factory=deque)
    next_seq: int | None = None
    last_seen_s: float = 0.0
    resync: bool = False  # restored from a snapshot: only `next_seq` (or seq 0) continues the stream


@dataclass
class BatcherPolicy:
    """The knobs `Batcher` reads on every call (replaced as a whole on SIGHUP)."""

    max_queued_per_stream: int = 32
    max_streams: int = 20_000
    gap_policy: GapPolicy = "continue"
    overload_policy: OverloadPolicy = "drop_oldest"


class Batcher:
    """Per-stream FIFO queues in seq order, and the set of streams with something queued (oldest first)."""

    def __init__(self, policy: BatcherPolicy) -> None:
        self.policy = policy
        self._streams: dict[str, _Stream] = {}
        self._ready: dict[str, None] = {}  # insertion-ordered set of streams with a non-empty queue
        self.queued = 0
        self.queued_bytes = 0  # payload bytes of the queued chunks

    def add(self, message: IngestMessage, now_s: float) -> list[Notice]:
        """Queue `message` in its stream's order; returns statuses to publish (gap, bad_seq, overload, capacity)."""
        stream = self._streams.get(message.stream_id)
        if stream is None:
            if len(self._streams) >= self.policy.max_streams:
                return [
                    Notice(
                        message.stream_id,
                        "capacity",
                        f"the daemon holds {len(self._streams)} streams (streams.max_streams); message refused",
                        message.seq,
                        False,
                    )
                ]
            stream = self._streams[message.stream_id] = _Stream()
        stream.last_seen_s = now_s
        notices = self._check_seq(stream, message, now_s)
        if notices and not notices[-1].accepted:
            return notices
        stream.next_seq = None if message.kind == "end" else message.seq + 1
        if len(stream.queue) >= self.policy.max_queued_per_stream and message.kind == "data":
            notice = self._overflow(stream, message)
            notices.append(notice)
            if not notice.accepted:
                return notices
        self._push(stream, Item(message, now_s))
        return notices

    def restore(self, next_seqs: dict[str, int], now_s: float) -> None:
        """After a restart from a snapshot: each stream continues at its seq; a producer that is further along is
        told (status `resend`) to send again from there, so the restored state sees every chunk exactly once."""
        for stream_id, next_seq in next_seqs.items():
            self._streams[stream_id] = _Stream(next_seq=next_seq, last_seen_s=now_s, resync=True)

    def _check_seq(self, stream: _Stream, message: IngestMessage, now_s: float) -> list[Notice]:
        expected = stream.next_seq
        if expected is None or message.seq == expected:
            stream.resync = False
            return []
        stream_id = message.stream_id
        if stream.resync and message.seq > expected:
            return [
                Notice(
                    stream_id,
                    "resend",
                    f"the daemon restarted from a snapshot that holds this stream up to seq {expected - 1}: "
                    f"resend from seq {expected} (message dropped)",
                    message.seq,
                    False,
                    resend_from=expected,
                )
            ]
        stream.resync = False
        if message.seq == 0:
            self._push(stream, Item(_reset_of(message), now_s, synthetic=True))
            return [
                Notice(stream_id, "reset", f"seq 0 after seq {expected - 1}: stream restarted, state reset", 0, True)
            ]
        if message.seq < expected:
            return [
                Notice(
                    stream_id,
                    "bad_seq",
                    f"seq {message.seq} already received (expected {expected}); "
                    "message dropped. Send seq 0 to restart a stream",
                    message.seq,
                    False,
                )
            ]
        missing = message.seq - expected
        action = "state kept (gap_policy continue)"
        if self.policy.gap_policy == "reset":
            self._push(stream, Item(_reset_of(message), now_s, synthetic=True))
            action = "state reset (gap_policy reset)"
        elif self.policy.gap_policy == "bridge":
            self._push(stream, Item(_reset_of(message), now_s, synthetic=True, bridge_messages=missing))
            action = "hole bridged by the frontend where it can (gap_policy bridge)"
        return [
            Notice(
                stream_id,
                "gap",
                f"expected seq {expected}, got {message.seq}: {missing} message(s) missing; {action}",
                message.seq,
                True,
            )
        ]

    def _overflow(self, stream: _Stream, message: IngestMessage) -> Notice:
        limit = self.policy.max_queued_per_stream
        if self.policy.overload_policy == "refuse_newest":
            return Notice(
                message.stream_id,
                "overload",
                f"{limit} chunks already queued for this stream (streams.max_queued_per_stream); chunk refused",
                message.seq,
                False,
            )
        oldest = next((item for item in stream.queue if item.message.kind == "data"), None)
        if oldest is None:
            return Notice(
                message.stream_id, "overload", f"{limit} control messages queued; chunk refused", message.seq, False
            )
        stream.queue.remove(oldest)
        self.queued -= 1
        self.queued_bytes -= _nbytes(oldest)
        return Notice(
            message.stream_id,
            "overload",
            f"{limit} chunks queued for this stream "
            f"(streams.max_queued_per_stream): dropped the oldest, seq {oldest.message.seq}",
            oldest.message.seq,
            True,
        )

    def _push(self, stream: _Stream, item: Item) -> None:
        if not stream.queue:
            self._ready[item.stream_id] = None
        stream.queue.append(item)
        self.queued += 1
        self.queued_bytes += _nbytes(item)

    def oldest_received_s(self) -> float | None:
        """Arrival time of the head of the stream that has waited longest (None when nothing is queued)."""
        for stream_id in self._ready:
            return self._streams[stream_id].queue[0].received_s
        return None

    def lagging(self, now_s: float, lag_s: float) -> list[tuple[str, float]]:
        """Streams whose head has waited at least `lag_s`, with how long it waited (oldest first)."""
        found = []
        for stream_id in self._ready:
            waited_s = now_s - self._streams[stream_id].queue[0].received_s
            if waited_s >= lag_s:
                found.append((stream_id, waited_s))
        return found

    def take(self, max_batch: int) -> list[Item]:
        """Pop the head item of up to `max_batch` streams (at most one per stream), oldest stream first."""
        chosen = list(itertools.islice(self._ready, max_batch))
        items = []
        for stream_id in chosen:
            del self._ready[stream_id]
            queue = self._streams[stream_id].queue
            items.append(queue.popleft())
            if queue:
                self._ready[stream_id] = None  # backlog: back of the line (round-robin)
        self.queued -= len(items)
        self.queued_bytes -= sum(_nbytes(item) for item in items)
        return items

    def streams_ready(self) -> int:
        return len(self._ready)

    def max_depth(self) -> int:
        return max((len(self._streams[s].queue) for s in self._ready), default=0)

    def forget(self, stream_id: str) -> None:
        """Drop a stream's bookkeeping (after `end`); queued items, if any, stay and are still answered."""
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.queue:
            del self._streams[stream_id]

    def evict_idle(self, idle_s: float, now_s: float) -> list[str]:
        """Forget streams with nothing queued and no message for `idle_s`; returns their ids."""
        idle = [s for s, stream in self._streams.items() if not stream.queue and now_s - stream.last_seen_s >= idle_s]
        for stream_id in idle:
            del self._streams[stream_id]
        return idle

    def drain_all(self) -> list[Item]:
        """Pop everything still queued (shutdown after the drain timeout)."""
        items = [item for stream in self._streams.values() for item in stream.queue]
        for stream in self._streams.values():
            stream.queue.clear()
        self._ready.clear()
        self.queued = 0
        self.queued_bytes = 0
        return items

    def last_seqs(self) -> dict[str, int]:
        """Per stream, the last seq accepted (for the shutdown status)."""
        return {s: stream.next_seq - 1 for s, stream in self._streams.items() if stream.next_seq is not None}

    def __len__(self) -> int:
        return len(self._streams)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams


def _nbytes(item: Item) -> int:
    samples = item.message.samples
    return 0 if samples is None else samples.nbytes


def _reset_of(message: IngestMessage) -> IngestMessage:
    return IngestMessage(message.stream_id, message.seq, "reset", 0, 0, "", None, None)
