"""`streamer feed`: read audio (wav/flac/ogg) and sensor (csv/npy) files and send them as streams.

Real-time pacing by default (chunk k of every stream leaves at start + k·chunk_ms). `fast` sends as fast as the
daemon answers: at most `window` unanswered chunks per stream (credit-based flow control over the pred/status
answers), so nothing is refused by the daemon's per-stream queue bound.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from streamer.client import Producer, Subscriber
from streamer.daemon.protocol import ANSWER_CODES
from streamer.errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SENSOR_SUFFIXES = (".csv", ".npy")


@dataclass(frozen=True)
class FeedSource:
    """One file as one stream: `samples` `[frames, channels]` int16 or float32 at `rate_hz`."""

    stream_id: str
    samples: np.ndarray
    rate_hz: int

    def chunks(self, chunk_ms: float) -> list[np.ndarray]:
        frames = max(1, round(self.rate_hz * chunk_ms / 1000))
        return [self.samples[start : start + frames] for start in range(0, len(self.samples), frames)]


def _sidecar_rate(path: Path) -> int | None:
    sidecar = path.with_suffix(path.suffix + ".json")
    if not sidecar.exists():
        return None
    try:
        rate = json.loads(sidecar.read_text())["rate_hz"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f'sidecar {sidecar}: expected JSON {{"rate_hz": <int>}}: {exc}') from None
    if not isinstance(rate, int) or rate <= 0:
        raise ConfigError(f"sidecar {sidecar}: rate_hz is {rate!r}, expected a positive integer")
    return rate


def _read_sensor(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        try:
            array = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        except ValueError:  # a header row
            array = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, skiprows=1)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ConfigError(f"sensor file {path}: expected finite numbers shaped [frames, channels], got {array.shape}")
    return array


def load_source(path: Path, stream_id: str, rate_hz: int | None) -> FeedSource:
    """Read one file; sensor files take their rate from `rate_hz` or a sidecar `FILE.json` {"rate_hz": N}."""
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        try:
            info = soundfile.info(str(path))
            dtype = "int16" if info.subtype in ("PCM_16", "PCM_S8", "PCM_U8") else "float32"
            samples, file_rate = soundfile.read(str(path), dtype=dtype, always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise ConfigError(f"audio file {path}: cannot read: {exc}") from None
        return FeedSource(stream_id, samples, int(file_rate))
    if suffix in SENSOR_SUFFIXES:
        rate = rate_hz or _sidecar_rate(path)
        if rate is None:
            raise ConfigError(
                f"sensor file {path}: no sample rate; pass --rate-hz or write {path.name}.json "
                '{"rate_hz": N} beside it'
            )
        return FeedSource(stream_id, _read_sensor(path), rate)
    raise ConfigError(f"file {path}: unknown type {suffix!r}; expected one of {AUDIO_SUFFIXES + SENSOR_SUFFIXES}")


def stream_ids(paths: list[Path], stream: str | None) -> list[str]:
    """One id per file: `stream` (numbered when several files), else the file stem made protocol-safe."""
    if stream is not None:
        return [stream] if len(paths) == 1 else [f"{stream}-{index}" for index in range(len(paths))]
    ids = [re.sub(r"[^A-Za-z0-9._:-]", "_", path.stem)[:120] or "stream" for path in paths]
    return [f"{sid}-{index}" if ids.count(sid) > 1 else sid for index, sid in enumerate(ids)]


@dataclass
class FeedResult:
    streams: int
    chunks: int
    audio_s: float
    wall_s: float
    answered: int


def feed(
    sources: list[FeedSource],
    endpoint: str,
    chunk_ms: float,
    *,
    fast: bool = False,
    publish_endpoint: str | None = None,
    window: int = 8,
    end: bool = True,
) -> FeedResult:
    """Send every source as a stream; paced in real time, or with flow control when `fast`."""
    plans = [(source, source.chunks(chunk_ms)) for source in sources]
    total = sum(len(chunks) for _, chunks in plans)
    started_s = time.monotonic()
    answered = 0
    with Producer(endpoint) as producer:
        if fast:
            if publish_endpoint is None:
                raise ConfigError("feed --fast needs the daemon's publish endpoint for flow control")
            answered = _send_fast(producer, plans, publish_endpoint, window)
        else:
            _send_paced(producer, plans, chunk_ms)
        if end:
            for source in sources:
                producer.end(source.stream_id)
    audio_s = sum(len(source.samples) / source.rate_hz for source in sources)
    return FeedResult(len(sources), total, audio_s, time.monotonic() - started_s, answered)


def _send_paced(producer: Producer, plans: list[tuple[FeedSource, list[np.ndarray]]], chunk_ms: float) -> None:
    start_s = time.monotonic()
    longest = max((len(chunks) for _, chunks in plans), default=0)
    for index in range(longest):
        delay_s = start_s + index * chunk_ms / 1000 - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        for source, chunks in plans:
            if index < len(chunks):
                producer.send(source.stream_id, chunks[index], source.rate_hz)


def _send_fast(
    producer: Producer, plans: list[tuple[FeedSource, list[np.ndarray]]], publish_endpoint: str, window: int
) -> int:
    ids = [source.stream_id for source, _ in plans]
    with Subscriber(publish_endpoint, ids, kinds=("pred", "status")) as subscriber:
        time.sleep(0.3)  # let the subscription reach the daemon before the first answer is published
        sent = dict.fromkeys(ids, 0)
        done = dict.fromkeys(ids, 0)
        position = {sid: 0 for sid in ids}
        answered = 0
        while any(done[sid] < len(chunks) for (source, chunks), sid in zip(plans, ids, strict=True)):
            for (source, chunks), sid in zip(plans, ids, strict=True):
                while position[sid] < len(chunks) and sent[sid] - done[sid] < window:
                    producer.send(sid, chunks[position[sid]], source.rate_hz)
                    position[sid] += 1
                    sent[sid] += 1
            message = subscriber.recv(timeout_ms=5000)
            if message is None:
                raise ConfigError(f"feed --fast: no answer from the daemon at {publish_endpoint} for 5 s")
            answers = message.kind == "pred" or message.header.get("code") in ANSWER_CODES
            if answers and "seq" in message.header and message.stream_id in done:
                done[message.stream_id] += 1
                answered += 1
    return answered
