"""Home Assistant's Wyoming protocol, wake-word side: `streamer wyoming` serves the keyword model to Wyoming clients
(Home Assistant's voice pipeline, wyoming-satellite) over TCP, with the `wyoming` package's event codec and server.

Every connection is one stream of one shared in-process Pipeline and Detector: the same frontend, model state and
event rule (threshold, smoothing, patience, refractory time from the model's metadata and `[detection]`) as the
ZeroMQ daemon's `event` messages. The conversation:

    describe                         → info: one wake program, one model per keyword (label, phrase)
    detect {names}                   (optional) only these keywords answer
    audio-start                      the stream starts afresh (state reset): a Wyoming audio stream is a new recording
    audio-chunk {rate, width, ...}   PCM (8/16/32-bit, any rate, any channels: resampled and mixed down by the frontend)
                                     → detection {name: label, timestamp: the chunk's} for each event
    audio-stop                       → not-detected, if nothing was detected since audio-start

A chunk that cannot be decoded (odd length, unsupported width) is answered with an `error` event and changes no
state. The model runs on the event loop's thread: per 100 ms chunk and stream ~0.9 ms (median, shipped model),
which suits the handful of satellites a home has. With a name to announce (`--zeroconf`), the service is announced by
mDNS once it listens and withdrawn when it stops (`streamer.daemon.mdns`), so Home Assistant discovers it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
from functools import partial
from typing import Any

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.wake import Detect, Detection, NotDetected

from streamer import __version__
from streamer.daemon.config import DaemonConfig
from streamer.daemon.mdns import Announcement, announced_address, check_name
from streamer.daemon.stepper import build_detector, build_pipeline
from streamer.detect import Detector
from streamer.errors import ConfigError, StreamerError
from streamer.pipeline import Pipeline

log = logging.getLogger("streamer.daemon.wyoming")

ATTRIBUTION = Attribution(name="streamer", url="https://github.com/streamer/streamer")
WORD = re.compile(r"[a-z']+")
PCM_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype(np.uint8), 2: np.dtype("<i2"), 4: np.dtype("<i4")}  # `width`, bytes


def pcm_samples(audio: bytes, width: int, channels: int) -> np.ndarray:
    """Wyoming PCM → `[frames, channels]`: int16 as it is, 8-bit unsigned and 32-bit signed as float32 in [-1, 1)."""
    dtype = PCM_DTYPES.get(width)
    if dtype is None:
        raise ValueError(f"audio width {width} bytes: expected one of {sorted(PCM_DTYPES)}")
    if channels < 1 or len(audio) % (width * channels):
        raise ValueError(f"{len(audio)} bytes of audio are not whole frames of {channels} x {width} bytes")
    samples = np.frombuffer(audio, dtype).reshape(-1, channels)
    if width == 1:
        return ((samples.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if width == 4:
        return (samples / np.float32(2**31)).astype(np.float32)
    return samples


class WakeService:
    """The shared model and detector, and what `describe` answers."""

    def __init__(self, pipeline: Pipeline, detector: Detector) -> None:
        if pipeline.sample_rate_hz is None:
            raise ConfigError(f"wyoming: model {pipeline.engine.spec.path} has no audio frontend")
        self.pipeline = pipeline
        self.detector = detector
        params = detector.params
        self.keywords = [params.labels[index] for index in params.keywords]
        phrases = _phrases(pipeline)
        models = [
            WakeModel(
                name=label,
                attribution=ATTRIBUTION,
                installed=True,
                description=f"{phrases.get(label, label)} ({pipeline.engine.spec.path.name})",
                version=__version__,
                languages=["en"],
                phrase=phrases.get(label, label.replace("_", " ")),
            )
            for label in self.keywords
        ]
        program = WakeProgram(
            name="streamer",
            attribution=ATTRIBUTION,
            installed=True,
            description="streamer: stateful keyword spotting (one step per chunk, state carried)",
            version=__version__,
            models=models,
        )
        self.info = Info(wake=[program])
        self._ids = itertools.count()

    def new_stream(self) -> str:
        return f"wyoming-{next(self._ids)}"

    def restart(self, stream_id: str) -> None:
        self.pipeline.end(stream_id)
        self.detector.end(stream_id)

    def push(self, stream_id: str, chunk: AudioChunk) -> list[str]:
        """Step the stream by one chunk; the labels of the events it fired. StreamerError/ValueError: bad chunk."""
        samples = pcm_samples(chunk.audio, chunk.width, chunk.channels)
        report = self.pipeline.push_report({stream_id: samples}, rate_hz=chunk.rate)
        if stream_id in report.errors:
            raise report.errors[stream_id]
        found = self.detector.push_many([(stream_id, report.scores[stream_id], report.step0[stream_id])])
        return [event.label for _, event in found]


def _phrases(pipeline: Pipeline) -> dict[str, str]:
    """label → spoken phrase, from a trained model's `streamer.keyword.training` metadata (if there): a label is
    the phrase's lower-case words joined by "_" (train-keyword's rule)."""
    raw = pipeline.engine.spec.metadata.get("streamer.keyword.training")
    try:
        phrases = json.loads(raw)["phrases"] if raw else []
    except (ValueError, KeyError, TypeError):
        return {}
    return {"_".join(WORD.findall(p.lower())): p for p in phrases if isinstance(p, str)}


class WakeHandler(AsyncEventHandler):
    """One Wyoming connection: one stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: WakeService) -> None:
        super().__init__(reader, writer)
        self.service = service
        self.stream_id = service.new_stream()
        self.names: set[str] | None = None  # `detect` asked for these keywords only
        self.detected = False

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.service.info.event())
        elif Detect.is_type(event.type):
            names = Detect.from_event(event).names
            self.names = set(names) if names else None
        elif AudioStart.is_type(event.type):
            self.service.restart(self.stream_id)
            self.detected = False
        elif AudioChunk.is_type(event.type):
            await self._chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            if not self.detected:
                await self.write_event(NotDetected().event())
            self.detected = False
        return True

    async def _chunk(self, chunk: AudioChunk) -> None:
        try:
            labels = self.service.push(self.stream_id, chunk)
        except (StreamerError, ValueError) as exc:
            log.warning("wyoming %s: refused a chunk: %s", self.stream_id, exc)
            await self.write_event(Error(text=str(exc), code="bad_audio").event())
            return
        for label in labels:
            if self.names is None or label in self.names:
                self.detected = True
                log.info("wyoming %s: detected %s", self.stream_id, label)
                await self.write_event(Detection(name=label, timestamp=chunk.timestamp).event())

    async def disconnect(self) -> None:
        self.service.restart(self.stream_id)  # frees the stream's state


def build_service(config: DaemonConfig) -> WakeService:
    """The Pipeline and Detector the daemon would build from `config` (model, provider, `[detection]`)."""
    pipeline = build_pipeline(config)
    detector = build_detector(pipeline, config)
    if detector is None:
        raise ConfigError(
            f"wyoming: model {config.model.path} has no keyword detection settings (metadata streamer.detection), "
            "or detection.enabled is false"
        )
    return WakeService(pipeline, detector)


def serve(config: DaemonConfig, uri: str, zeroconf_name: str | None = None) -> None:
    """Serve Wyoming clients on `uri` (tcp://HOST:PORT, unix://PATH) until SIGTERM or interrupted; with
    `zeroconf_name`, announce the service by mDNS while it runs (Home Assistant's discovery)."""
    announcement = None
    if zeroconf_name is not None:  # checked before the model loads: a bad setting fails at once
        address, port = announced_address(uri)
        announcement = Announcement(check_name(zeroconf_name), address, port)
    service = build_service(config)
    server = AsyncServer.from_uri(uri)
    log.info("wyoming wake service on %s: %s (keywords %s)", uri, config.model.path, ", ".join(service.keywords))
    asyncio.run(_run(server, partial(WakeHandler, service=service), announcement))


async def _run(server: AsyncServer, handler: Any, announcement: Announcement | None) -> None:
    if announcement is None:
        await server.run(handler)
        return
    serving = asyncio.create_task(server.run(handler))
    while getattr(server, "_server", None) is None and not serving.done():  # listening before it is announced
        await asyncio.sleep(0.01)
    try:
        if not serving.done():
            await announcement.start()
        await serving
    finally:
        await announcement.stop()
