"""Engine: steps many streams' chunks through as few onnxruntime calls as it can, each stream's state kept.

Chunks are grouped by length: one call per distinct length, so no stream is ever padded (a padded step would
change a recurrent state). At most one chunk per stream per call, which keeps each stream's order. A bad chunk
(wrong dtype or width, NaN/Inf) is refused for its stream alone; its state is left as it was.

`step_report_async` runs the onnxruntime calls on the engine's compute thread (onnxruntime releases the GIL), so a
caller such as the daemon keeps doing its Python work on another core meanwhile; `PendingStep.finish()` writes the
new states back. Until then the engine holds still: every other call first finishes the pending step.
With `parallel_calls` = K a group of streams is split into up to K calls that run side by side on K threads (one
session takes concurrent calls): coarse parallelism, where onnxruntime's intra-op threads split every operator.
"""

from __future__ import annotations

import contextlib
import operator
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streamer.engine.state import StateStore
from streamer.errors import CapacityError, ChunkError, DeviceError, StreamerError
from streamer.model.contract import ModelSpec, open_session

FLOAT32 = np.dtype(np.float32)
_dtype = operator.attrgetter("dtype")
_shape = operator.attrgetter("shape")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
MIN_ROWS_PER_CALL = 16  # parallel_calls splits a batch only into parts of at least this many streams


@dataclass
class StepReport:
    """The outcome of one `Engine.step_report`: scores of the stepped streams, errors of the refused ones."""

    scores: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, StreamerError] = field(default_factory=dict)
    step0: dict[str, int] = field(default_factory=dict)
    calls: int = 0


def resolve_provider(provider: str) -> str:
    """Map `cpu`/`cuda` to an onnxruntime provider that is really there; never fall back silently."""
    if provider not in PROVIDERS:
        raise DeviceError(f"provider {provider!r} is not known; expected one of {sorted(PROVIDERS)}")
    name = PROVIDERS[provider]
    available = ort.get_available_providers()
    if name not in available:
        hint = " (install onnxruntime-gpu and a matching CUDA/cuDNN)" if provider == "cuda" else ""
        raise DeviceError(
            f"provider {provider!r} ({name}) is not available in this onnxruntime{hint}; available: {available}"
        )
    return name


@dataclass
class _Call:
    """One onnxruntime call of a step: its streams, their slots and the inputs gathered for it."""

    steps: int
    stream_ids: list[str]
    slots: np.ndarray
    feeds: dict[str, np.ndarray]


class PendingStep:
    """A step whose onnxruntime calls run on the compute thread; `finish()` applies it (once) and reports."""

    def __init__(self, engine: Engine, report: StepReport, calls: list[_Call], future: Future[list[list[Any]]]):
        self._engine = engine
        self._report = report
        self._calls = calls
        self._future: Future[list[list[Any]]] | None = future
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once the calls have run (`finish` then does not wait)."""
        return self._future is None or self._future.done()

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the calls have run: on the compute thread then, or here and now if they have."""
        future = self._future
        if future is None:
            callback()
        else:
            future.add_done_callback(lambda _: callback())

    def finish(self) -> StepReport:
        """Wait for the calls, write the new states back, return the report (the same one on every call)."""
        if self._future is not None:
            future, self._future = self._future, None
            if self._engine._pending is self:
                self._engine._pending = None
            try:
                outputs = future.result()
            except BaseException as exc:  # the states were not touched: the chunks were simply not stepped
                self._error = exc
            else:
                self._engine._apply(self._calls, outputs, self._report)
        if self._error is not None:
            raise self._error
        return self._report


class Engine:
    """Features in, per-step scores out; state kept per stream id."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        provider: str = "cpu",
        intra_op_threads: int = 1,
        parallel_calls: int = 1,
        initial_slots: int = 64,
        max_streams: int = 100_000,
    ) -> None:
        path = Path(model)
        self.session = open_session(path, [resolve_provider(provider)], intra_op_threads)
        self.spec = ModelSpec.from_session(path, self.session)
        self.store = StateStore(self.spec.states, initial_slots=initial_slots, max_streams=max_streams)
        self._output_names = self.spec.output_names
        self._state_inputs = [s.input for s in self.spec.states]
        self._empty = np.zeros((0, self.spec.num_classes), np.float32)
        self._compute: ThreadPoolExecutor | None = None  # started by the first step_report_async
        self._pending: PendingStep | None = None
        self.busy_s = 0.0  # wall time spent in onnxruntime calls, on whichever thread ran them
        if parallel_calls < 1:
            raise ValueError(f"parallel_calls={parallel_calls}, expected >= 1")
        self.parallel_calls = parallel_calls
        self._helpers: ThreadPoolExecutor | None = None  # parallel_calls - 1 threads, started when first needed

    # -- stepping --------------------------------------------------------------------------------------------

    def step(self, chunks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Step each stream by its chunk (float32 [T, features]); returns float32 [T, classes] per stream.
        If any chunk is bad, raises its ChunkError before any stream is stepped."""
        self.settle()
        report = StepReport()
        groups = self._plan(chunks, report)
        if report.errors:
            raise next(iter(report.errors.values()))
        self._run(groups, report)
        if report.errors:  # only CapacityError can arise while running
            raise next(iter(report.errors.values()))
        return report.scores

    def step_report(self, chunks: Mapping[str, np.ndarray]) -> StepReport:
        """Step every good chunk; refuse bad ones (and streams that found no free slot) in `errors`."""
        self.settle()
        report = StepReport()
        self._run(self._plan(chunks, report), report)
        return report

    def step_report_async(self, chunks: Mapping[str, np.ndarray]) -> PendingStep:
        """`step_report` with its onnxruntime calls on the compute thread: returns at once; `finish()` the result
        before anything else needs this stream's state (any other Engine call does so itself)."""
        self.settle()
        report = StepReport()
        calls = self._start(self._plan(chunks, report), report)
        if self._compute is None:
            self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamer-compute")
        pending = PendingStep(self, report, calls, self._compute.submit(self._execute, calls))
        self._pending = pending
        return pending

    def settle(self) -> None:
        """Finish the pending asynchronous step, if any (its report stays with its PendingStep)."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            with contextlib.suppress(Exception):  # its owner gets the same exception from its own finish()
                pending.finish()

    def close(self) -> None:
        """Finish any pending step and stop the compute thread (and the parallel calls' threads)."""
        self.settle()
        if self._compute is not None:
            self._compute.shutdown(wait=True)
            self._compute = None
        if self._helpers is not None:
            self._helpers.shutdown(wait=True)
            self._helpers = None

    def _plan(self, chunks: Mapping[str, np.ndarray], report: StepReport) -> list[tuple[int, list[str], np.ndarray]]:
        """Validate and group the chunks by length: [(steps, stream ids, x [batch, steps, features])]."""
        values = list(chunks.values())
        if values and set(map(type, values)) == {np.ndarray} and set(map(_dtype, values)) == {FLOAT32}:
            shapes = set(map(_shape, values))
            shape = next(iter(shapes))
            # The common case, one length and all well formed, is checked without a Python loop.
            if len(shapes) == 1 and len(shape) == 2 and shape[0] > 0 and shape[1] == self.spec.feature_dim:
                x = np.concatenate(values).reshape(len(values), *shape)
                return self._drop_non_finite(shape[0], list(chunks), x, report)
        by_length: dict[int, list[str]] = {}
        for stream_id, chunk in chunks.items():
            problem = self._check(chunk)
            if problem is not None:
                report.errors[stream_id] = ChunkError(stream_id, problem)
            elif chunk.shape[0] == 0:
                report.scores[stream_id] = self._empty
                report.step0[stream_id] = self.steps_done(stream_id)
            else:
                by_length.setdefault(chunk.shape[0], []).append(stream_id)
        groups = []
        for steps, stream_ids in by_length.items():
            x = np.concatenate([chunks[s] for s in stream_ids]).reshape(len(stream_ids), steps, -1)
            groups.extend(self._drop_non_finite(steps, stream_ids, x, report))
        return groups

    @staticmethod
    def _drop_non_finite(
        steps: int, stream_ids: list[str], x: np.ndarray, report: StepReport
    ) -> list[tuple[int, list[str], np.ndarray]]:
        if np.isfinite(x).all():
            return [(steps, stream_ids, x)]
        finite = np.isfinite(x).all(axis=(1, 2))
        for stream_id in (s for s, ok in zip(stream_ids, finite, strict=True) if not ok):
            report.errors[stream_id] = ChunkError(stream_id, "contains NaN or Inf")
        kept = [s for s, ok in zip(stream_ids, finite, strict=True) if ok]
        return [(steps, kept, x[finite])] if kept else []

    def _check(self, chunk: object) -> str | None:
        if not isinstance(chunk, np.ndarray):
            return f"chunk is a {type(chunk).__name__}, expected a float32 numpy array [time, {self.spec.feature_dim}]"
        if chunk.dtype != FLOAT32:
            return f"chunk has dtype {chunk.dtype}, expected float32"
        if chunk.ndim != 2 or chunk.shape[1] != self.spec.feature_dim:
            return f"chunk has shape {list(chunk.shape)}, expected [time, {self.spec.feature_dim}]"
        return None

    def _run(self, groups: list[tuple[int, list[str], np.ndarray]], report: StepReport) -> None:
        calls = self._start(groups, report)
        self._apply(calls, self._execute(calls), report)

    def _start(self, groups: list[tuple[int, list[str], np.ndarray]], report: StepReport) -> list[_Call]:
        """Slots and gathered inputs for each group (a stream without a free slot is refused in `report`)."""
        calls = []
        for steps, stream_ids, x in groups:
            try:
                slots = self.store.slots_for(stream_ids)
            except CapacityError as exc:
                known = np.array([s in self.store for s in stream_ids])
                for stream_id in (s for s, ok in zip(stream_ids, known, strict=True) if not ok):
                    report.errors[stream_id] = exc
                if not known.any():
                    continue
                stream_ids, x = [s for s, ok in zip(stream_ids, known, strict=True) if ok], x[known]
                slots = self.store.slots_for(stream_ids)
            parts = min(self.parallel_calls, len(stream_ids) // MIN_ROWS_PER_CALL)
            if parts <= 1:
                feeds = dict(zip(self._state_inputs, self.store.gather(slots), strict=True))
                feeds[self.spec.data_input] = x
                calls.append(_Call(steps, stream_ids, slots, feeds))
                continue
            for rows in np.array_split(np.arange(len(stream_ids)), parts):
                feeds = dict(zip(self._state_inputs, self.store.gather(slots[rows]), strict=True))
                feeds[self.spec.data_input] = x[rows]
                calls.append(_Call(steps, [stream_ids[i] for i in rows.tolist()], slots[rows], feeds))
        return calls

    def _execute(self, calls: list[_Call]) -> list[list[Any]]:
        """The onnxruntime calls alone (what the compute thread runs): no engine state is read or written. With
        `parallel_calls` > 1 they run side by side (onnxruntime releases the GIL; a session takes concurrent calls)."""
        started_s = time.perf_counter()
        run, names = self.session.run, self._output_names
        if len(calls) > 1 and self.parallel_calls > 1:
            if self._helpers is None:
                self._helpers = ThreadPoolExecutor(self.parallel_calls - 1, thread_name_prefix="streamer-call")
            others = [self._helpers.submit(run, names, call.feeds) for call in calls[1:]]
            outputs = [run(names, calls[0].feeds), *(future.result() for future in others)]
        else:
            outputs = [run(names, call.feeds) for call in calls]
        self.busy_s += time.perf_counter() - started_s
        return outputs

    def _apply(self, calls: list[_Call], outputs: list[list[Any]], report: StepReport) -> None:
        now_s = time.monotonic()
        for call, (y, *states) in zip(calls, outputs, strict=True):
            self.store.scatter(call.slots, states)
            step0 = self.store.steps[call.slots].tolist()
            self.store.touch(call.slots, call.steps, now_s)
            report.scores.update(zip(call.stream_ids, y, strict=True))
            report.step0.update(zip(call.stream_ids, step0, strict=True))
            report.calls += 1

    # -- stream lifecycle ------------------------------------------------------------------------------------

    def reset(self, stream_id: str) -> bool:
        """Zero one stream's state; returns False if the engine does not hold it."""
        self.settle()
        return self.store.reset(stream_id)

    def end(self, stream_id: str) -> bool:
        """Forget one stream and free its slot; returns False if the engine does not hold it."""
        self.settle()
        return self.store.end(stream_id)

    def evict_idle(self, idle_s: float, now_s: float | None = None) -> list[str]:
        """End streams not stepped for `idle_s` seconds (monotonic clock); returns their ids."""
        self.settle()
        return self.store.evict_idle(idle_s, now_s)

    def steps_done(self, stream_id: str) -> int:
        """How many steps this stream has taken since it started or was last reset (0 if unknown)."""
        slot = self.store.slot_of.get(stream_id)
        return 0 if slot is None else int(self.store.steps[slot])

    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Write every stream's state to `path` atomically."""
        self.settle()
        self.store.snapshot(path, self.spec.fingerprint)

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Replace all streams' state with the snapshot's; SnapshotError (nothing changed) if it doesn't fit."""
        self.settle()
        self.store.restore(path, self.spec.fingerprint)

    @property
    def streams(self) -> list[str]:
        return list(self.store.slot_of)

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self.store
