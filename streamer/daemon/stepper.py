"""Turns a batch of queued items into answers: control messages, one Pipeline call, preds, events, statuses.

Between the batcher and the publisher, in three calls so that the daemon's loop can overlap them: `prepare` a
batch (control messages, then the frontend), `submit` it (its model call starts on the engine's compute thread)
and `complete` it once that call is done (answers). While batch k's model call runs, the loop reads, decodes and
prepares batch k+1. `step` does all three at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from streamer.daemon import protocol
from streamer.daemon.batcher import Batcher, Item
from streamer.daemon.config import DaemonConfig
from streamer.daemon.metrics import DaemonMetrics
from streamer.daemon.publisher import Publisher
from streamer.detect import DetectionParams, Detector
from streamer.errors import CapacityError, StreamerError
from streamer.pipeline import PendingPush, Pipeline, Prepared

log = logging.getLogger("streamer.daemon.server")


def build_pipeline(config: DaemonConfig) -> Pipeline:
    """The Pipeline `[model]` and `[streams]` ask for (the daemon's, and `streamer wyoming`'s)."""
    model = config.model
    return Pipeline(
        model.path,
        provider=model.provider,
        intra_op_threads=model.intra_op_threads,
        parallel_calls=model.parallel_calls,
        max_streams=config.streams.max_streams,
    )


def build_detector(pipeline: Pipeline, config: DaemonConfig) -> Detector | None:
    """The Detector for the model's `streamer.detection` metadata and `[detection]` overrides (None: no events)."""
    spec = pipeline.engine.spec
    if not config.detection.enabled:
        return None
    step_period_s = pipeline.step_period_s
    if step_period_s is None:
        if "streamer.detection" in spec.metadata:
            log.warning("detection off: the model's frontend does not say how long a step is")
        return None
    params = DetectionParams.resolve(
        spec.labels, spec.metadata, step_period_s, config.detection.overrides(), spec.scores == "logits"
    )
    return None if params is None else Detector(params)


class Batch:
    """A batch's data items, its features once prepared, its model call once submitted."""

    def __init__(self, group: dict[str, Item], prepared: Prepared) -> None:
        self.group = group
        self.prepared = prepared
        self.pending: PendingPush | None = None

    def done(self) -> bool:
        """Nothing left to wait for (also when the call could not start: `complete` then answers the failure)."""
        return self.pending is None or self.pending.done()


class Stepper:
    """Owns what happens to a batch once the loop has taken it; `publisher` is set once the sockets are bound."""

    def __init__(self, pipeline: Pipeline, detector: Detector | None, batcher: Batcher, metrics: DaemonMetrics) -> None:
        self.pipeline = pipeline
        self.detector = detector
        self.batcher = batcher
        self.metrics = metrics
        self.publisher: Publisher | None = None
        self.steps = 0  # model steps since the STATUS line last read and reset it
        self._pred = protocol.PredEncoder(pipeline.engine.spec.labels)
        self._chunk_s: dict[str, float] = {}  # duration of each stream's last chunk (gap_policy bridge)
        self.answered_seq: dict[str, int] = {}  # per stream, the last data seq whose chunk reached the model

    def send_status(self, stream_id: str | None, code: str, message: str, **extra: Any) -> None:
        if self.publisher is not None:
            self.publisher.send("status", protocol.encode_status(stream_id, code, message, **extra))

    def forget(self, stream_id: str) -> None:
        """Free everything held for a stream (idle eviction)."""
        self.answered_seq.pop(stream_id, None)
        self.pipeline.end(stream_id)
        if self.detector is not None:
            self.detector.end(stream_id)
        self._chunk_s.pop(stream_id, None)

    def step(self, items: list[Item]) -> None:
        """Apply control items, step the data items in one pipeline call, publish every answer."""
        batch = self.prepare(items)
        if batch is not None:
            self.submit(batch)
            self.complete(batch)

    def prepare(self, items: list[Item]) -> Batch | None:
        """Apply the control items and run the frontend on the data items (None: no data, or a failure already
        answered). Control items reset or end engine state, so they wait for a model call still running."""
        group: dict[str, Item] = {}
        for item in items:
            if item.message.kind == "data":
                group[item.stream_id] = item
            else:
                self._control(item)
        if not group:
            return None
        chunks = {stream_id: item.message.samples for stream_id, item in group.items()}
        rates = {stream_id: item.message.rate_hz for stream_id, item in group.items()}
        try:
            prepared = self.pipeline.prepare(chunks, rate_hz=rates)  # type: ignore[arg-type]
        except Exception:  # a bug in a frontend: every chunk of the batch still gets its answer
            self._failed(group)
            return None
        return Batch(group, prepared)

    def submit(self, batch: Batch) -> None:
        """Start the batch's model call (after finishing the previous one's)."""
        try:
            batch.pending = self.pipeline.submit(batch.prepared)
        except Exception:  # a bug in the engine: `complete` answers every chunk with internal_error
            log.exception("starting the model call of a batch failed")

    def complete(self, batch: Batch) -> None:
        """Wait for the batch's model call if it still runs, then publish its answers."""
        group = batch.group
        try:
            if batch.pending is None:
                raise RuntimeError("the batch's model call never started")
            report = batch.pending.finish()
        except Exception:
            self._failed(group)
            return
        self.answered_seq.update((stream_id, item.message.seq) for stream_id, item in group.items())
        self.metrics.engine_calls.inc()
        self.metrics.batch_size.observe(len(group))
        self._answer(group, report.scores, report.step0, report.errors)

    def _failed(self, group: dict[str, Item]) -> None:
        log.exception("stepping a batch of %d stream(s) failed (a bug: please report it)", len(group))
        for stream_id, item in group.items():
            self.metrics.messages["internal_error"].inc()
            self.send_status(
                stream_id, "internal_error", "the daemon failed to step this chunk (logged)", seq=item.message.seq
            )

    def _control(self, item: Item) -> None:
        message = item.message
        if item.bridge_messages:
            self._bridge(message.stream_id, item.bridge_messages)
            return
        if message.kind == "reset":
            self.pipeline.reset(message.stream_id)
            if self.detector is not None:
                self.detector.reset(message.stream_id)
            if not item.synthetic:
                self.send_status(message.stream_id, "reset", "state reset", seq=message.seq)
            return
        self.pipeline.end(message.stream_id)
        self.answered_seq.pop(message.stream_id, None)
        if self.detector is not None:
            self.detector.end(message.stream_id)
        self.batcher.forget(message.stream_id)
        self._chunk_s.pop(message.stream_id, None)
        self.send_status(message.stream_id, "ended", "stream ended, state freed", seq=message.seq)

    def _bridge(self, stream_id: str, missing: int) -> None:
        """gap_policy bridge: let the frontend fill the hole (sensor: hold the last frame up to max_fill_s) and
        step the filled frames, or reset the stream when the hole is too long. Frontends without `bridge_gap`
        (audio, identity) keep the state as `continue` does."""
        bridge = getattr(self.pipeline.frontend, "bridge_gap", None)
        chunk_s = self._chunk_s.get(stream_id)
        if bridge is None or chunk_s is None:
            return
        missing_s = missing * chunk_s
        try:
            filled = bridge(stream_id, missing_s)
            if filled is None:
                self.pipeline.reset(stream_id)
                if self.detector is not None:
                    self.detector.reset(stream_id)
                self.send_status(
                    stream_id,
                    "reset",
                    f"a hole of ~{missing_s:.3g} s ({missing} message(s) of "
                    f"{chunk_s:.3g} s) is too long to bridge: state reset",
                )
            elif len(filled):
                self.pipeline.engine.step({stream_id: filled})
        except StreamerError as exc:
            log.warning("stream %s: could not bridge a gap of %d message(s): %s", stream_id, missing, exc)

    def _answer(
        self,
        group: dict[str, Item],
        scores: dict[str, np.ndarray],
        step0: dict[str, int],
        errors: dict[str, StreamerError],
    ) -> None:
        assert self.publisher is not None
        now_s, wall_ns = time.monotonic(), time.time_ns()
        encode = self._pred.encode
        preds, latencies_s, e2e_ns, steps = [], [], [], 0
        for stream_id, stream_scores in scores.items():
            message = group[stream_id].message
            if message.samples is not None and message.rate_hz:
                self._chunk_s[stream_id] = len(message.samples) / message.rate_hz
            latency_s = now_s - group[stream_id].received_s
            preds.append(
                encode(stream_id, message.seq, step0[stream_id], stream_scores, latency_s * 1000, message.t_ns)
            )
            latencies_s.append(latency_s)
            if message.t_ns is not None:
                e2e_ns.append(wall_ns - message.t_ns)
            steps += len(stream_scores)
        self.publisher.send_many("pred", preds)
        if self.detector is not None:
            self._detect(group, scores, step0)
        for stream_id, error in errors.items():
            code = "capacity" if isinstance(error, CapacityError) else "bad_payload"
            self.metrics.messages[code].inc()
            self.send_status(stream_id, code, str(error), seq=group[stream_id].message.seq)
        self.metrics.latency.observe_many(np.asarray(latencies_s))
        self.metrics.e2e_latency.observe_many(np.maximum(np.asarray(e2e_ns, np.float64) / 1e9, 0.0))
        self.metrics.steps.inc(steps)
        self.steps += steps

    def _detect(self, group: dict[str, Item], scores: dict[str, np.ndarray], step0: dict[str, int]) -> None:
        assert self.publisher is not None and self.detector is not None
        found = self.detector.push_many([(stream_id, s, step0[stream_id]) for stream_id, s in scores.items()])
        for stream_id, event in found:
            frames = protocol.encode_event(
                stream_id, event.label, event.score, event.step, event.t_s, seq=group[stream_id].message.seq
            )
            self.publisher.send("event", frames)
            self.metrics.events.inc()
