"""Engine: steps many streams' chunks through as few onnxruntime calls as it can, each stream's state kept.

Chunks are grouped by length: one call per distinct length, so no stream is ever padded (a padded step would
change a recurrent state). At most one chunk per stream per call, which keeps each stream's order. A bad chunk
(wrong dtype or width, NaN/Inf) is refused for its stream alone; its state is left as it was.
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from streamer.engine.state import StateStore
from streamer.errors import CapacityError, ChunkError, DeviceError, StreamerError
from streamer.model.contract import ModelSpec, open_session

FLOAT32 = np.dtype(np.float32)
_dtype = operator.attrgetter("dtype")
_shape = operator.attrgetter("shape")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


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


class Engine:
    """Features in, per-step scores out; state kept per stream id."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        provider: str = "cpu",
        intra_op_threads: int = 1,
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

    # -- stepping --------------------------------------------------------------------------------------------

    def step(self, chunks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Step each stream by its chunk (float32 [T, features]); returns float32 [T, classes] per stream.
        If any chunk is bad, raises its ChunkError before any stream is stepped."""
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
        report = StepReport()
        self._run(self._plan(chunks, report), report)
        return report

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
        now_s = time.monotonic()
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
            feeds = dict(zip(self._state_inputs, self.store.gather(slots), strict=True))
            feeds[self.spec.data_input] = x
            y, *states = self.session.run(self._output_names, feeds)
            self.store.scatter(slots, states)
            step0 = self.store.steps[slots].tolist()
            self.store.touch(slots, steps, now_s)
            report.scores.update(zip(stream_ids, y, strict=True))
            report.step0.update(zip(stream_ids, step0, strict=True))
            report.calls += 1

    # -- stream lifecycle ------------------------------------------------------------------------------------

    def reset(self, stream_id: str) -> bool:
        """Zero one stream's state; returns False if the engine does not hold it."""
        return self.store.reset(stream_id)

    def end(self, stream_id: str) -> bool:
        """Forget one stream and free its slot; returns False if the engine does not hold it."""
        return self.store.end(stream_id)

    def evict_idle(self, idle_s: float, now_s: float | None = None) -> list[str]:
        """End streams not stepped for `idle_s` seconds (monotonic clock); returns their ids."""
        return self.store.evict_idle(idle_s, now_s)

    def steps_done(self, stream_id: str) -> int:
        """How many steps this stream has taken since it started or was last reset (0 if unknown)."""
        slot = self.store.slot_of.get(stream_id)
        return 0 if slot is None else int(self.store.steps[slot])

    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Write every stream's state to `path` atomically."""
        self.store.snapshot(path, self.spec.fingerprint)

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Replace all streams' state with the snapshot's; SnapshotError (nothing changed) if it doesn't fit."""
        self.store.restore(path, self.spec.fingerprint)

    @property
    def streams(self) -> list[str]:
        return list(self.store.slot_of)

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self.store
