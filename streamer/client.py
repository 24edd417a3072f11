"""Python clients of the wire protocol (docs/protocol.md): `Producer` sends sample chunks, `Subscriber` reads answers.

with Producer("tcp://127.0.0.1:5555") as producer, Subscriber("tcp://127.0.0.1:5556", ["mic"]) as sub:
    producer.send("mic", samples, rate_hz=16000)
    message = sub.recv(timeout_ms=1000)   # OutputMessage(kind="pred", stream_id="mic", header, scores)

With CURVE (docs/security.md), pass `curve=ClientKeys("keys/me.key_secret", "keys/server.key")` to either.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Self

import numpy as np
import zmq

from streamer.daemon.auth import ClientKeys
from streamer.daemon.protocol import OutputMessage, decode_output, encode_ingest
from streamer.errors import ConfigError

KINDS = ("pred", "event", "status")


class Producer:
    """A PUSH socket connected to the daemon's ingest; numbers each stream's messages (`seq`) from 0."""

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5555",
        *,
        send_hwm: int = 1000,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, send_hwm)
        self.socket.setsockopt(zmq.LINGER, 2000)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.connect(endpoint)
        self.next_seq: dict[str, int] = {}

    def _seq(self, stream_id: str) -> int:
        seq = self.next_seq.get(stream_id, 0)
        self.next_seq[stream_id] = seq + 1
        return seq

    def send(self, stream_id: str, samples: np.ndarray, rate_hz: int, t_ns: int | None = None) -> int:
        """Send one chunk (int16/float32 `[frames]` or `[frames, channels]`); returns its seq. Blocks at the HWM."""
        stamp = time.time_ns() if t_ns is None else t_ns
        seq = self._seq(stream_id)
        self.socket.send_multipart(encode_ingest(stream_id, seq, "data", samples, rate_hz, stamp))
        return seq

    def reset(self, stream_id: str) -> int:
        """Ask the daemon to zero this stream's state (in order with its chunks)."""
        seq = self._seq(stream_id)
        self.socket.send_multipart(encode_ingest(stream_id, seq, "reset"))
        return seq

    def end(self, stream_id: str) -> int:
        """Tell the daemon the stream is over (its state is freed); a later send starts it again at seq 0."""
        seq = self._seq(stream_id)
        self.socket.send_multipart(encode_ingest(stream_id, seq, "end"))
        self.next_seq.pop(stream_id, None)
        return seq

    def close(self, linger_ms: int = 2000) -> None:
        self.socket.close(linger=linger_ms)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class Subscriber:
    """A SUB socket on the daemon's publish endpoint, subscribed to `kinds` of `streams` (all streams if None).

    `missed` counts, per stream, answers that never arrived (a jump in the `seq` of preds and per-message statuses;
    subscribe to both for an exact count), which is how a subscriber learns it was too slow and the daemon's PUB
    dropped messages for it.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:5556",
        streams: Iterable[str] | None = None,
        kinds: Iterable[str] = KINDS,
        *,
        receive_hwm: int = 100_000,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, receive_hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.socket)
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r}: expected one of {KINDS}")
            for stream_id in streams if streams is not None else [None]:
                prefix = f"{kind}/" if stream_id is None else f"{kind}/{stream_id}/"
                self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.socket.connect(endpoint)
        self.missed: dict[str, int] = {}
        self._last_seq: dict[str, int] = {}

    def recv(self, timeout_ms: int | None = None) -> OutputMessage | None:
        """The next message, or None if none came within `timeout_ms` (None waits forever)."""
        if timeout_ms is not None and not self.socket.poll(timeout_ms):
            return None
        message = decode_output(self.socket.recv_multipart())
        if message.kind != "event" and isinstance(message.header.get("seq"), int):
            self._count_missed(message)
        return message

    def _count_missed(self, message: OutputMessage) -> None:
        # Each accepted message is answered by a pred or a status carrying its seq: a jump means lost answers.
        seq = int(message.header["seq"])
        last = self._last_seq.get(message.stream_id)
        if last is not None and seq > last + 1:
            self.missed[message.stream_id] = self.missed.get(message.stream_id, 0) + seq - last - 1
        self._last_seq[message.stream_id] = seq

    def __iter__(self) -> Iterator[OutputMessage]:
        while True:
            message = self.recv()
            if message is not None:
                yield message

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def wait_until_serving(
    ingest: str, publish: str, timeout_s: float = 30.0, stream_id: str = "_handshake", curve: ClientKeys | None = None
) -> None:
    """Block until a daemon answers on `publish` a chunk sent to `ingest` (ConfigError after `timeout_s`).

    Also defeats ZeroMQ's slow-joiner effect: once this returns, a subscriber connected before it sees answers.
    """
    deadline_s = time.monotonic() + timeout_s
    silence = np.zeros(160, np.int16)
    with (
        Producer(ingest, send_hwm=10, curve=curve) as producer,
        Subscriber(publish, [stream_id], curve=curve) as subscriber,
    ):
        seq = 0
        while time.monotonic() < deadline_s:
            frames = encode_ingest(stream_id, seq, "data", silence, 16000, time.time_ns())
            try:  # never block: with no daemon there, a PUSH socket would wait forever
                producer.socket.send_multipart(frames, zmq.NOBLOCK)
                seq += 1
            except zmq.Again:
                pass
            if subscriber.recv(timeout_ms=200) is not None:
                producer.socket.send_multipart(encode_ingest(stream_id, seq, "end"), zmq.NOBLOCK)
                return
        producer.close(linger_ms=0)
    raise ConfigError(f"no daemon answered on {publish} within {timeout_s:g} s (ingest {ingest})")
