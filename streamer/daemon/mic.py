"""`serve --mic`: a thread that turns a MicrophoneSource into wire-protocol messages on an inproc ingest endpoint.

The microphone goes through exactly the same path as a network producer (decode, order, batch), so what the
daemon does with `mic` is what it does with any stream. Only the thread owns its PUSH socket.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import zmq

from streamer.daemon.config import MicConfig
from streamer.daemon.protocol import encode_ingest

log = logging.getLogger(__name__)
ENDPOINT = "inproc://streamer-mic"


class MicrophoneBridge:
    """Reads blocks from the microphone and sends `chunk_ms` chunks as stream `config.stream_id`."""

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], config: MicConfig, preferred_rate_hz: int | None
    ) -> None:
        from streamer.sources.microphone import MicrophoneConfig, MicrophoneSource

        device: str | int | None = config.device
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self.config = config
        self.source = MicrophoneSource(
            MicrophoneConfig(device=device, stall_ms=config.stall_ms), preferred_rate_hz=preferred_rate_hz
        )
        self._context = context
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the device now (DeviceError if it cannot be opened) and start sending."""
        self.source.start()
        self._thread = threading.Thread(target=self._run, name="microphone-bridge", daemon=True)
        self._thread.start()
        log.info(
            "microphone %s at %d Hz, %d channel(s) -> stream %r",
            self.source.device,
            self.source.sample_rate_hz,
            self.source.channels,
            self.config.stream_id,
        )

    def _run(self) -> None:
        push = self._context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(ENDPOINT)
        frames_per_chunk = max(1, round(self.source.sample_rate_hz * self.config.chunk_ms / 1000))
        pending: list[np.ndarray] = []
        pending_frames, seq = 0, 0
        try:
            while not self._stop.is_set():
                block = self.source.read(timeout_s=0.2)
                if block is None:
                    continue
                pending.append(block)
                pending_frames += len(block)
                if pending_frames < frames_per_chunk:
                    continue
                chunk = np.concatenate(pending)
                pending, pending_frames = [], 0
                push.send_multipart(
                    encode_ingest(self.config.stream_id, seq, "data", chunk, self.source.sample_rate_hz, time.time_ns())
                )
                seq += 1
        finally:
            push.close(linger=0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.source.close()
