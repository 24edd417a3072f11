"""Pipeline: raw samples in, per-step scores out; the model's own frontend (from its metadata) then the Engine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.engine import Engine, StepReport
from streamer.engine.engine import PendingStep
from streamer.engine.state import Attachment
from streamer.errors import ModelError, SnapshotError, StreamError
from streamer.frontend import Frontend, build_frontend, push_each

RateSpec = int | Mapping[str, int] | None  # one rate for all streams, a rate per stream, or the model's rate


@dataclass
class Prepared:
    """Features of a batch whose model call has not started (`Pipeline.prepare`)."""

    stream_ids: list[str]
    features: dict[str, np.ndarray]
    errors: dict[str, StreamError]


class PendingPush:
    """`Pipeline.push_report_async`'s result: the frontend has run, the model call may still be running."""

    def __init__(
        self, pipeline: Pipeline, stream_ids: list[str], step: PendingStep, errors: dict[str, StreamError]
    ) -> None:
        self._pipeline = pipeline
        self._stream_ids = stream_ids
        self._step = step
        self._errors = errors
        self._applied = False

    def done(self) -> bool:
        return self._step.done()

    def on_done(self, callback: Callable[[], None]) -> None:
        """See `PendingStep.on_done`."""
        self._step.on_done(callback)

    def finish(self) -> StepReport:
        """Wait for the model call, apply it; the report as `push_report` gives it."""
        report = self._step.finish()
        if not self._applied:
            self._applied = True
            self._pipeline._after_step(self._stream_ids, report)
            report.errors.update(self._errors)
        return report


class Pipeline:
    """Frontend + Engine for many streams; a stream's scores depend only on its own samples, however chunked."""

    def __init__(self, model_path: str | os.PathLike[str], *, provider: str = "cpu", **engine_kwargs: Any) -> None:
        self.engine = Engine(model_path, provider=provider, **engine_kwargs)
        spec = self.engine.spec
        try:
            self.frontend: Frontend = build_frontend(spec.frontend, feature_dim=spec.feature_dim)
        except ModelError as exc:
            raise ModelError(f"model {spec.path}: {exc}") from exc
        self._last_push_s: dict[str, float] = {}

    @property
    def labels(self) -> list[str]:
        return self.engine.spec.labels

    @property
    def step_period_s(self) -> float | None:
        """Seconds of input audio (or sensor time) per model step; None when the frontend cannot know."""
        return self.frontend.step_period_s

    @property
    def sample_rate_hz(self) -> int | None:
        """The model's own rate: the default for `rate_hz`."""
        return self.frontend.sample_rate_hz

    def push(self, chunks: Mapping[str, np.ndarray], rate_hz: RateSpec = None) -> dict[str, np.ndarray]:
        """Scores float32 [T, classes] per stream (T may be 0). A bad chunk raises its ChunkError before any stream
        is touched, as `Engine.step` does; use `push_report` to step the good chunks and collect every error."""
        features = self.frontend.push(self._tagged(chunks, rate_hz))  # consumes nothing if it raises
        report = self._step(chunks, features)
        if report.errors:  # only refusals by the engine (no free state slot) remain
            raise next(iter(report.errors.values()))
        return report.scores

    def push_report(self, chunks: Mapping[str, np.ndarray], rate_hz: RateSpec = None) -> StepReport:
        """Step every good chunk; report bad ones in `errors` ({id: StreamError}); `step0` as Engine.step_report.

        `rate_hz` is one rate for all streams, or a mapping stream id → rate (missing ids: the model's rate)."""
        features, frontend_errors = push_each(self.frontend, self._tagged(chunks, rate_hz))
        report = self._step(chunks, features)
        report.errors.update(frontend_errors)
        return report

    def push_report_async(self, chunks: Mapping[str, np.ndarray], rate_hz: RateSpec = None) -> PendingPush:
        """`push_report` with the model call on the engine's compute thread: the frontend runs here, now; call
        `finish()` on the result for the report. Any other engine call finishes it first."""
        return self.submit(self.prepare(chunks, rate_hz))

    def prepare(self, chunks: Mapping[str, np.ndarray], rate_hz: RateSpec = None) -> Prepared:
        """The frontend half of `push_report_async`. It touches only the frontend, so it may run while the
        previous batch's model call is still running; `submit` the result next (before any other prepare)."""
        features, frontend_errors = push_each(self.frontend, self._tagged(chunks, rate_hz))
        return Prepared(list(chunks), features, frontend_errors)

    def submit(self, prepared: Prepared) -> PendingPush:
        """The model half: finishes the previous asynchronous step, then starts this one's model call."""
        pending = self.engine.step_report_async(prepared.features)
        return PendingPush(self, prepared.stream_ids, pending, prepared.errors)

    def _tagged(self, chunks: Mapping[str, np.ndarray], rate_hz: RateSpec) -> dict[str, tuple[np.ndarray, int]]:
        return {stream_id: (samples, self._rate_for(stream_id, rate_hz)) for stream_id, samples in chunks.items()}

    def _step(self, chunks: Mapping[str, np.ndarray], features: dict[str, np.ndarray]) -> StepReport:
        report = self.engine.step_report(features)
        self._after_step(chunks, report)
        return report

    def _after_step(self, chunks: Mapping[str, Any] | list[str], report: StepReport) -> None:
        now_s = time.monotonic()
        for stream_id in chunks:
            self._last_push_s[stream_id] = now_s
        for stream_id in report.errors:
            if stream_id not in self.engine:
                # The engine refused a stream it never held (no free slot): drop its frontend state too.
                self.frontend.end(stream_id)
                self._last_push_s.pop(stream_id, None)

    def _rate_for(self, stream_id: str, rate_hz: RateSpec) -> int:
        rate = rate_hz.get(stream_id) if isinstance(rate_hz, Mapping) else rate_hz
        if rate is not None:
            return rate
        # The model's own rate; a frontend without one (identity: frames are steps) ignores the rate.
        return self.frontend.sample_rate_hz or 0

    def reset(self, stream_id: str) -> bool:
        """Start the stream over (zero state, no carried samples); False if neither part held it."""
        in_frontend = self.frontend.reset(stream_id)
        return self.engine.reset(stream_id) or in_frontend

    def end(self, stream_id: str) -> bool:
        """Forget the stream everywhere; False if neither part held it."""
        self._last_push_s.pop(stream_id, None)
        in_frontend = self.frontend.end(stream_id)
        return self.engine.end(stream_id) or in_frontend

    def evict_idle(self, idle_s: float, now_s: float | None = None) -> list[str]:
        """End every stream not pushed for `idle_s` seconds (monotonic clock); returns their ids."""
        now_s = time.monotonic() if now_s is None else now_s
        idle = [s for s, seen_s in self._last_push_s.items() if now_s - seen_s > idle_s]
        for stream_id in idle:
            self.end(stream_id)
        return idle

    @property
    def streams(self) -> list[str]:
        return list(self._last_push_s)

    # -- snapshots -------------------------------------------------------------------------------------------

    def snapshot(self, path: str | os.PathLike[str], annotations: dict[str, Any] | None = None) -> None:
        """Write the engine's state and the frontend's carried samples to one file, atomically. `annotations`
        (JSON-able) ride along and come back from `restore`; the daemon keeps each stream's last seq there."""
        self.engine.settle()
        save = getattr(self.frontend, "save_state", None)
        header, arrays = save() if save is not None else (None, {})
        attachment = Attachment({"frontend": header, "annotations": annotations or {}}, arrays)
        self.engine.store.snapshot(path, self.engine.spec.fingerprint, attachment)

    def restore(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Replace every stream's state with the snapshot's; returns its annotations. SnapshotError (nothing
        changed) for a corrupt file or another model's. A stream continues exactly where it was, provided its
        producer resends from the first sample not yet answered (and, if resampled, after a few-ms transient)."""
        self.engine.settle()
        spec = self.engine.spec
        snapshot = self.engine.store.read(path, spec.fingerprint)
        header = snapshot.attachment.header if snapshot.attachment is not None else {}
        frontend = build_frontend(spec.frontend, feature_dim=spec.feature_dim)
        load = getattr(frontend, "load_state", None)
        if header.get("frontend") is not None and load is not None:
            assert snapshot.attachment is not None
            try:
                load(header["frontend"], snapshot.attachment.arrays)
            except (KeyError, ValueError, TypeError) as exc:
                raise SnapshotError(f"snapshot {path}: its frontend state does not fit this model ({exc})") from exc
        self.engine.store.apply(snapshot)
        self.frontend = frontend
        held = [*snapshot.stream_ids, *getattr(frontend, "streams", [])]  # a stream may not have a full frame yet
        self._last_push_s = dict.fromkeys(held, time.monotonic())
        annotations = header.get("annotations", {})
        return annotations if isinstance(annotations, dict) else {}
