"""Ingest: messages off the sockets, decoded and checked, filed per stream in the batcher; every refusal answered.

The loop (server.py) calls `read` when an ingest socket is readable, with a budget of messages; `full` tells it to
stop reading at the queue bounds, so that ZeroMQ's queues fill and producers' PUSH blocks (lossless backpressure).
Nothing here steps a model or waits.
"""

from __future__ import annotations

import logging
import time

import zmq

from streamer.daemon import protocol
from streamer.daemon.auth import ClientAllowList
from streamer.daemon.batcher import Batcher, Notice
from streamer.daemon.config import IngestConfig
from streamer.daemon.metrics import DaemonMetrics
from streamer.daemon.rates import RateLimitedLog, Rates
from streamer.daemon.stepper import Stepper
from streamer.errors import ProtocolError

log = logging.getLogger("streamer.daemon.server")


class Ingest:
    """Reads, decodes and queues; answers malformed messages and batcher notices with a `status`."""

    def __init__(
        self, config: IngestConfig, batcher: Batcher, stepper: Stepper, metrics: DaemonMetrics, rates: Rates
    ) -> None:
        self.config = config
        self.batcher = batcher
        self.stepper = stepper  # its `send_status` publishes
        self.metrics = metrics
        self.rates = rates
        self.limits = protocol.IngestLimits(max_payload_bytes=config.max_payload_bytes)
        self.allow_list: ClientAllowList | None = None  # under CURVE: the producers' keys allowed now
        self._bad_log = RateLimitedLog()
        self._accepted = 0  # messages accepted in the current read burst (one counter update per burst)

    def full(self) -> bool:
        """Backpressure: stop reading (producers' PUSH then blocks) at the queued chunk or byte bound."""
        batcher, config = self.batcher, self.config
        return batcher.queued >= config.max_queued_chunks or batcher.queued_bytes >= config.max_queued_bytes

    def read(self, sock: zmq.Socket[bytes], budget: int) -> None:
        """Read up to `budget` messages that are already there (never waits)."""
        self._accepted = 0
        # Under CURVE, a socket whose peers authenticated (PULL) is checked message by message against the current
        # allow-list: ZeroMQ authenticates a connection only once, and a key removed on SIGHUP must stop at once.
        allow = self.allow_list if sock.socket_type == zmq.PULL else None
        try:
            for _ in range(budget):
                if self.full():
                    return
                try:
                    if allow is None:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    else:
                        parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        if not allow.admits(parts[0]):
                            self._unauthorized(parts[0])
                            continue
                        frames = [part.bytes for part in parts]
                except zmq.Again:
                    return
                self.accept(frames, time.monotonic())
        finally:
            self.metrics.messages["accepted"].inc(self._accepted)
            self.rates.messages += self._accepted

    def accept(self, frames: list[bytes], now_s: float) -> None:
        """Decode one message and queue it, or answer why not."""
        try:
            stream_id = protocol.decode_stream_id(frames[0])
        except ProtocolError as exc:
            self._refuse(None, exc, now_s)
            return
        try:
            message = protocol.decode_ingest(frames, self.limits, stream_id)
        except ProtocolError as exc:
            self._refuse(stream_id, exc, now_s)
            return
        except Exception:  # a decoder bug must not take the daemon down: answer, log the traceback, go on
            log.exception("decoding a message of stream %s failed (a bug: please report it)", stream_id)
            self._refuse(stream_id, ProtocolError("internal_error", "the daemon failed to decode this message"), now_s)
            return
        notices = self.batcher.add(message, now_s)
        for notice in notices:
            self._publish_notice(notice)
        if not notices or notices[-1].accepted:
            self._accepted += 1

    def _unauthorized(self, frame: zmq.Frame) -> None:
        """A message over a connection whose key is no longer allowed: dropped, counted, never answered."""
        self.metrics.messages["unauthorized"].inc()
        self._bad_log.warning(
            "unauthorized",
            f"dropped a message from client key {frame.get('User-Id')} (no longer in security.allowed_clients_dir)",
            time.monotonic(),
        )

    def _refuse(self, stream_id: str | None, exc: ProtocolError, now_s: float) -> None:
        self.metrics.messages[exc.code].inc()
        self._bad_log.warning(exc.code, f"refused message for stream {stream_id or '?'}: {exc}", now_s)
        self.stepper.send_status(stream_id, exc.code, str(exc))

    def _publish_notice(self, notice: Notice) -> None:
        if notice.code == "gap":
            self.metrics.gaps.inc()
        elif notice.code == "overload":
            self.metrics.overload.inc()
        if not notice.accepted:
            self.metrics.messages[notice.code if notice.code in self.metrics.messages else "refused"].inc()
        extra = {} if notice.resend_from is None else {"resend_from": notice.resend_from}
        self.stepper.send_status(notice.stream_id, notice.code, notice.message, seq=notice.seq, **extra)
