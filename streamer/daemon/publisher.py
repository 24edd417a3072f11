"""The PUB side: sends pred/event/status frames without ever blocking the daemon, counting what it publishes.

libzmq's PUB drops messages for a subscriber whose queue (`publish.send_hwm`) is full and does not say so; the
daemon sends with NOBLOCK so it can never wait, counts any refusal as a drop, and subscribers detect their own
losses from `seq` (see docs/protocol.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import zmq

from streamer.daemon.metrics import DaemonMetrics
from streamer.errors import ConfigError

log = logging.getLogger(__name__)


def bind(socket: zmq.Socket[bytes], endpoint: str, role: str) -> str:
    """Bind with an error that names the endpoint and the config key; returns the bound endpoint."""
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as exc:
        raise ConfigError(f"{role}: cannot bind {endpoint!r}: {exc}") from None
    return str(socket.getsockopt_string(zmq.LAST_ENDPOINT))


class Publisher:
    """Owns the PUB socket; one `send` per message, never blocking."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        send_hwm: int,
        metrics: DaemonMetrics,
        configure: Callable[[zmq.Socket[bytes]], None] | None = None,
    ) -> None:
        self.socket = context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, send_hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        if configure is not None:  # e.g. CURVE server keys, which must be set before bind
            configure(self.socket)
        self.endpoint = bind(self.socket, endpoint, "publish.endpoint")
        self.metrics = metrics
        self._sent = {kind: metrics.published[kind] for kind in ("pred", "event", "status")}
        # Plain int flags and one send() per frame: pyzmq's send_multipart spends ~7 µs per message on enum ops.
        self._more = int(zmq.SNDMORE | zmq.NOBLOCK)
        self._last = int(zmq.NOBLOCK)

    def _send(self, frames: list[bytes]) -> None:
        """All frames or none: only the first frame can meet a full queue (ZeroMQ queues whole messages)."""
        send, more = self.socket.send, self._more
        for frame in frames[:-1]:
            send(frame, more)
        send(frames[-1], self._last)

    def send(self, kind: str, frames: list[bytes]) -> bool:
        try:
            self._send(frames)
        except zmq.Again:
            self.metrics.publish_dropped.inc()
            return False
        self._sent[kind].inc()
        return True

    def send_many(self, kind: str, messages: list[list[bytes]]) -> int:
        """Send several messages of one kind; returns how many went out."""
        send, sent = self._send, 0
        for frames in messages:
            try:
                send(frames)
            except zmq.Again:
                self.metrics.publish_dropped.inc()
                continue
            sent += 1
        self._sent[kind].inc(sent)
        return sent

    def close(self, linger_ms: int) -> None:
        """Close after giving queued messages up to `linger_ms` to reach subscribers."""
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        self.socket.close()
