"""MicrophoneSource: one capture device as a stream of int16 blocks, supervised and reconnected on faults.

The PortAudio callback only copies the block into a bounded queue (never blocks; a full queue drops the block
and counts it). A supervisor thread reports counters and faults through `on_status(code, message)` and
reopens the device with exponential backoff when no callback came for `stall_ms` or the stream died. Streams
are stopped with `abort()` then `close()`: `stop()` waits for a callback and hangs forever when none comes.
Several microphones are several MicrophoneSource objects (several stream ids).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.errors import DeviceError
from streamer.sources.devices import InputDevice, explain, import_sounddevice, negotiate, resolve_device

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], None]  # (code, message), called from the supervisor thread
# Codes: "overflow" (queue full, blocks dropped), "input_overflow" (PortAudio lost input), "stalled",
# "device_error" (a reopen failed), "reconnected".


@dataclass(frozen=True)
class MicrophoneConfig:
    """How to capture; every field has a working default."""

    device: str | int | None = None  # index, or name (exact or unique substring); None: the default input
    sample_rate_hz: int | None = None  # None: the model's rate if the device takes it, else the device default
    channels: int | None = None  # None: 1 if possible, else the device's maximum
    block_ms: float = 10.0  # audio per callback
    queue_blocks: int = 200  # blocks held for a slow consumer (2 s at 10 ms) before dropping
    stall_ms: float = 1000.0  # no callback for this long while running: a fault, reopen the device
    reconnect_min_s: float = 0.1  # first wait before reopening; doubles per failed attempt
    reconnect_max_s: float = 5.0  # longest wait between attempts


@dataclass
class MicrophoneStats:
    """Counters since start(); read them any time (they only grow)."""

    blocks: int = 0
    frames: int = 0
    dropped_blocks: int = 0
    input_overflows: int = 0
    stalls: int = 0
    reconnects: int = 0


class MicrophoneSource:
    """Blocks of int16 samples [frames, channels] from one input device; see the module docstring."""

    def __init__(
        self,
        config: MicrophoneConfig | None = None,
        *,
        preferred_rate_hz: int | None = None,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.config = config or MicrophoneConfig()
        self.preferred_rate_hz = preferred_rate_hz
        self.on_status = on_status or (lambda code, message: log.warning("microphone %s: %s", code, message))
        self.stats = MicrophoneStats()
        self.device: InputDevice | None = None
        self.sample_rate_hz = 0
        self.channels = 0
        self._sd = import_sounddevice()
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=self.config.queue_blocks)
        self._stream: Any = None
        self._lock = threading.Lock()  # guards _stream between the supervisor and close()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._last_callback_s = 0.0
        self._opened_s = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> MicrophoneSource:
        """Open the device (DeviceError if it cannot be opened now) and start capturing and supervising."""
        self._open()
        self._supervisor = threading.Thread(target=self._supervise, name="microphone-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def close(self) -> None:
        """Stop capturing (abort, then close: never stop()); safe to call twice."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        self._close_stream()

    def __enter__(self) -> MicrophoneSource:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, timeout_s: float | None = None) -> np.ndarray | None:
        """The next block, int16 [frames, channels]; None if none came within `timeout_s`."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    # -- the PortAudio side ----------------------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy, count, never block, never raise.
        self._last_callback_s = time.monotonic()
        if status.input_overflow:
            self.stats.input_overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.stats.dropped_blocks += 1
            return
        self.stats.blocks += 1
        self.stats.frames += frames

    def _open(self) -> None:
        sd, config = self._sd, self.config
        device = resolve_device(config.device)
        rate, channels = negotiate(device, config.sample_rate_hz, config.channels, self.preferred_rate_hz, "int16")
        where = f"{device.index} {device.name!r}"
        try:
            stream = sd.InputStream(
                device=device.index,
                samplerate=rate,
                channels=channels,
                dtype="int16",
                blocksize=max(1, round(rate * config.block_ms / 1000.0)),
                callback=self._callback,
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise explain(exc, where) from exc
        with self._lock:
            self._stream = stream
            self.device, self.sample_rate_hz, self.channels = device, rate, channels
            self._opened_s = time.monotonic()

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
            finally:
                stream.close()

    # -- supervision -----------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        poll_s = min(0.1, self.config.stall_ms / 4000.0)
        backoff_s = self.config.reconnect_min_s
        reported = (0, 0)
        while not self._stop.wait(poll_s):
            reported = self._report_counters(reported)
            fault = self._fault()
            if fault is None:
                if self._last_callback_s > self._opened_s:
                    backoff_s = self.config.reconnect_min_s  # audio flows again: the next fault starts afresh
                continue
            self.stats.stalls += 1
            self._status("stalled", fault)
            self._close_stream()
            backoff_s = self._reopen(backoff_s)

    def _fault(self) -> str | None:
        with self._lock:
            stream = self._stream
        if stream is None:
            return f"microphone {self._where()} is not open"
        if not stream.active:
            return f"the audio stream from {self._where()} stopped (device lost?)"
        quiet_s = time.monotonic() - max(self._last_callback_s, self._opened_s)
        if quiet_s * 1000.0 > self.config.stall_ms:
            return f"no audio from {self._where()} for {quiet_s * 1000.0:.0f} ms"
        return None

    def _where(self) -> str:
        return f"{self.device.index} {self.device.name!r}" if self.device else repr(self.config.device)

    def _status(self, code: str, message: str) -> None:
        try:
            self.on_status(code, message)
        except Exception:  # the supervisor must outlive a faulty callback: it is a task boundary
            log.exception("microphone status callback failed on %s: %s", code, message)

    def _reopen(self, backoff_s: float) -> float:
        """Reopen with exponential backoff until it works or close() is called; returns the next backoff."""
        while not self._stop.wait(backoff_s):
            backoff_s = min(2 * backoff_s, self.config.reconnect_max_s)
            try:
                self._open()
            except DeviceError as exc:
                self._status("device_error", f"{exc}; retrying in {backoff_s:.1f} s")
                continue
            self.stats.reconnects += 1
            self._status("reconnected", f"capturing from {self._where()} again")
            break
        return backoff_s

    def _report_counters(self, reported: tuple[int, int]) -> tuple[int, int]:
        dropped, overflows = self.stats.dropped_blocks, self.stats.input_overflows
        if dropped > reported[0]:
            self._status(
                "overflow", f"dropped {dropped - reported[0]} block(s): the consumer is slower than the microphone"
            )
        if overflows > reported[1]:
            self._status("input_overflow", f"the device lost input {overflows - reported[1]} time(s)")
        return dropped, overflows
