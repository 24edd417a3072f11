"""Python clients of the wire protocol (docs/protocol.md): `Producer` sends sample chunks, `Subscriber` reads answers.

with Producer("tcp://127.0.0.1:5555") as producer, Subscriber("tcp://127.0.0.1:5556", ["mic"]) as sub:
    producer.send("mic", samples, rate_hz=16000)
    message = sub.recv(timeout_ms=1000)   # OutputMessage(kind="pred", stream_id="mic", header, scores)

With CURVE (docs/security.md), pass `curve=ClientKeys("keys/me.key_secret", "keys/server.key")` to either.

Shards (docs/operations.md, "Many cores: shards"): one daemon serves about one core's worth of streams, so a
bigger server runs several, each with its own ports. Give both clients every daemon's endpoint, in the same order
everywhere (a list, or one string with commas): the Producer sends each stream to daemon `shard_of(stream_id, n)`
and the Subscriber listens to all of them.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Self

import numpy as np
import zmq

from streamer.daemon.auth import ClientKeys
from streamer.daemon.protocol import OutputMessage, decode_output, encode_ingest
from streamer.errors import ConfigError

KINDS = ("pred", "event", "status")

Endpoints = str | Sequence[str]  # one endpoint, several (one per shard), or several in one string with commas


def endpoint_list(endpoints: Endpoints) -> list[str]:
    """`endpoints` as a list: "tcp://h:5555,tcp://h:5565" → two; ValueError if there is none."""
    parts = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    found = [part.strip() for part in parts if part.strip()]
    if not found:
        raise ValueError(f"no endpoint in {endpoints!r}")
    return found


def shard_of(stream_id: str, shards: int) -> int:
    """Which of `shards` daemons serves `stream_id`: CRC-32 (zlib) of its bytes, modulo `shards`.

    A stream's state lives in one daemon, so every producer of the stream must pick the same one: use this rule
    and the same endpoint order everywhere (docs/protocol.md, "Shards")."""
    return zlib.crc32(stream_id.encode("utf-8")) % shards  # ids are ASCII (protocol); a bad one fails later


class Producer:
    """A PUSH socket connected to the daemon's ingest (one per daemon when given several: each stream goes to
    `shard_of(stream_id, n)`); numbers each stream's messages (`seq`) from 0."""

    def __init__(
        self,
        endpoint: Endpoints = "tcp://127.0.0.1:5555",
        *,
        send_hwm: int = 1000,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoints = endpoint_list(endpoint)
        self.endpoint = ",".join(self.endpoints)  # as given, for messages and older callers
        self._context = context or zmq.Context.instance()
        self.sockets: list[zmq.Socket[bytes]] = []
        for address in self.endpoints:
            socket = self._context.socket(zmq.PUSH)
            socket.setsockopt(zmq.SNDHWM, send_hwm)
            socket.setsockopt(zmq.LINGER, 2000)
            if curve is not None:
                curve.apply(socket)
            socket.connect(address)
            self.sockets.append(socket)
        self.socket = self.sockets[0]  # the one daemon's socket, when there is one
        self.next_seq: dict[str, int] = {}

    def socket_for(self, stream_id: str) -> zmq.Socket[bytes]:
        """The socket of the daemon that serves `stream_id`."""
        sockets = self.sockets
        return sockets[0] if len(sockets) == 1 else sockets[shard_of(stream_id, len(sockets))]

    def _seq(self, stream_id: str) -> int:
        seq = self.next_seq.get(stream_id, 0)
        self.next_seq[stream_id] = seq + 1
        return seq

    def send(self, stream_id: str, samples: np.ndarray, rate_hz: int, t_ns: int | None = None) -> int:
        """Send one chunk (int16/float32 `[frames]` or `[frames, channels]`); returns its seq. Blocks at the HWM."""
        stamp = time.time_ns() if t_ns is None else t_ns
        seq = self._seq(stream_id)
        self.socket_for(stream_id).send_multipart(encode_ingest(stream_id, seq, "data", samples, rate_hz, stamp))
        return seq

    def reset(self, stream_id: str) -> int:
        """Ask the daemon to zero this stream's state (in order with its chunks)."""
        seq = self._seq(stream_id)
        self.socket_for(stream_id).send_multipart(encode_ingest(stream_id, seq, "reset"))
        return seq

    def end(self, stream_id: str) -> int:
        """Tell the daemon the stream is over (its state is freed); a later send starts it again at seq 0."""
        seq = self._seq(stream_id)
        self.socket_for(stream_id).send_multipart(encode_ingest(stream_id, seq, "end"))
        self.next_seq.pop(stream_id, None)
        return seq

    def close(self, linger_ms: int = 2000) -> None:
        for socket in self.sockets:
            socket.close(linger=linger_ms)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class Subscriber:
    """A SUB socket on the daemon's publish endpoint (connected to every one given: shards), subscribed to `kinds`
    of `streams` (all streams if None).

    `missed` counts, per stream, answers that never arrived (a jump in the `seq` of preds and per-message statuses;
    subscribe to both for an exact count), which is how a subscriber learns it was too slow and the daemon's PUB
    dropped messages for it.
    """

    def __init__(
        self,
        endpoint: Endpoints = "tcp://127.0.0.1:5556",
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
        for address in endpoint_list(endpoint):
            self.socket.connect(address)
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
    ingest: Endpoints,
    publish: Endpoints,
    timeout_s: float = 30.0,
    stream_id: str = "_handshake",
    curve: ClientKeys | None = None,
) -> None:
    """Block until a daemon answers on `publish` a chunk sent to `ingest` (ConfigError after `timeout_s`); with
    several of each (shards), until every ingest's daemon answers on the publish endpoint in the same place.

    Also defeats ZeroMQ's slow-joiner effect: once this returns, a subscriber connected before it sees answers.
    """
    ingests, publishes = endpoint_list(ingest), endpoint_list(publish)
    if len(ingests) != len(publishes):
        raise ConfigError(
            f"{len(ingests)} ingest endpoint(s) but {len(publishes)} publish endpoint(s): one of each per daemon"
        )
    deadline_s = time.monotonic() + timeout_s
    for ingest_one, publish_one in zip(ingests, publishes, strict=True):
        _handshake(ingest_one, publish_one, deadline_s, timeout_s, stream_id, curve)


def _handshake(
    ingest: str, publish: str, deadline_s: float, timeout_s: float, stream_id: str, curve: ClientKeys | None
) -> None:
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
