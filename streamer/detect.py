"""Keyword detection: per-step class scores → events (threshold, smoothing, patience, refractory, re-arm).

A keyword fires when its moving-average probability (over `smoothing_steps`) stays at or above its threshold for
`patience_steps` consecutive steps. It then stays disarmed until its smoothed score falls below the threshold
again (one event per utterance, however long the keyword is held), and no keyword of that stream fires again
for `refractory_s` of stream time. Plain numpy, one state row per stream; no sockets, no clocks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.errors import ConfigError, ModelError

METADATA_KEY = "streamer.detection"
DEFAULTS: dict[str, Any] = {
    "background": ["_background"],
    "threshold": 0.5,
    "thresholds": {},
    "smoothing_steps": 5,
    "patience_steps": 3,
    "refractory_s": 1.0,
}


@dataclass(frozen=True, slots=True)
class DetectionParams:
    """Resolved detection parameters for one model; `keywords` indexes the non-background classes."""

    labels: tuple[str, ...]
    keywords: tuple[int, ...]
    thresholds: tuple[float, ...]
    smoothing_steps: int
    patience_steps: int
    refractory_s: float
    step_period_s: float
    scores_are_logits: bool = False

    @property
    def refractory_steps(self) -> int:
        return math.ceil(self.refractory_s / self.step_period_s - 1e-9)

    @classmethod
    def resolve(
        cls,
        labels: Sequence[str],
        metadata: Mapping[str, str],
        step_period_s: float,
        overrides: Mapping[str, Any] | None = None,
        scores_are_logits: bool = False,
    ) -> DetectionParams | None:
        """Parameters from metadata `streamer.detection` plus overrides; None when the model declares none."""
        if METADATA_KEY not in metadata:
            return None
        try:
            declared = json.loads(metadata[METADATA_KEY])
        except ValueError as exc:
            raise ModelError(f"metadata {METADATA_KEY} is not JSON: {exc}") from None
        if not isinstance(declared, dict):
            raise ModelError(f"metadata {METADATA_KEY} is {type(declared).__name__}: expected a JSON object")
        merged = {**DEFAULTS, **declared}
        for key, value in (overrides or {}).items():
            merged[key] = {**merged["thresholds"], **value} if key == "thresholds" else value
        return cls._build(list(labels), merged, step_period_s, scores_are_logits)

    @classmethod
    def _build(
        cls, labels: list[str], merged: dict[str, Any], step_period_s: float, scores_are_logits: bool
    ) -> DetectionParams:
        background = set(merged["background"])
        keywords = tuple(index for index, label in enumerate(labels) if label not in background)
        unknown = set(merged["thresholds"]) - set(labels)
        if unknown:
            raise ConfigError(f"detection thresholds name unknown labels {sorted(unknown)}: model labels are {labels}")
        thresholds = tuple(float(merged["thresholds"].get(labels[k], merged["threshold"])) for k in keywords)
        if not all(0.0 < value <= 1.0 for value in thresholds):
            raise ConfigError(f"detection thresholds {thresholds}: each must be in (0, 1]")
        if int(merged["smoothing_steps"]) < 1 or int(merged["patience_steps"]) < 1:
            raise ConfigError("detection smoothing_steps and patience_steps must be >= 1")
        if float(merged["refractory_s"]) < 0 or step_period_s <= 0:
            raise ConfigError("detection refractory_s must be >= 0 and the step period > 0")
        return cls(
            tuple(labels),
            keywords,
            thresholds,
            int(merged["smoothing_steps"]),
            int(merged["patience_steps"]),
            float(merged["refractory_s"]),
            step_period_s,
            scores_are_logits,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One detection: `step` is the stream step index where it fired, `t_s` its stream time (end of that step)."""

    label: str
    score: float
    step: int
    t_s: float


@dataclass(slots=True)
class _StreamState:
    history: np.ndarray  # [smoothing_steps - 1, keywords] keyword probabilities, most recent last
    run_steps: np.ndarray  # [keywords] consecutive steps over threshold
    armed: np.ndarray  # [keywords] False from an event until the score falls below threshold
    seen_steps: int = 0
    quiet_until_step: int = -1
    hot: bool = False  # history, run or armed could matter for the next chunk (else the cold path is exact)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class Detector:
    """Turns each stream's per-step scores into keyword events; one small state per stream.

    `push_many` screens a whole batch with a few numpy calls: a stream whose recent window holds no probability
    at or above the lowest threshold cannot fire (a mean never exceeds its maximum), so it only updates its
    history; the exact step-by-step scan runs for the rest.
    """

    def __init__(self, params: DetectionParams) -> None:
        self.params = params
        self._thresholds = np.asarray(params.thresholds, np.float32)
        self._min_threshold = float(self._thresholds.min()) if len(self._thresholds) else 2.0
        self._keywords = np.asarray(params.keywords, np.intp)
        self._streams: dict[str, _StreamState] = {}

    def _state(self, stream_id: str) -> _StreamState:
        state = self._streams.get(stream_id)
        if state is None:
            count = len(self._keywords)
            history = np.zeros((self.params.smoothing_steps - 1, count), np.float32)
            state = _StreamState(history, np.zeros(count, np.int64), np.ones(count, bool))
            self._streams[stream_id] = state
        return state

    def _smooth(self, state: _StreamState, probs: np.ndarray) -> np.ndarray:
        window = self.params.smoothing_steps
        steps = len(probs)
        joined = np.concatenate([state.history, probs])
        sums = np.cumsum(np.concatenate([np.zeros((1, joined.shape[1]), np.float64), joined]), axis=0)
        ends = np.arange(window, window + steps)
        totals = sums[ends] - sums[ends - window]
        counts = np.minimum(np.arange(state.seen_steps + 1, state.seen_steps + steps + 1), window)
        state.history = joined[len(joined) - (window - 1) :] if window > 1 else joined[:0]
        state.seen_steps += steps
        return (totals / counts[:, None]).astype(np.float32)

    def push(self, stream_id: str, scores: np.ndarray, step0: int) -> list[Event]:
        """Feed `scores` `[T, classes]` whose first row is stream step `step0`; returns the events it fires."""
        return [event for _, event in self.push_many([(stream_id, scores, step0)])]

    def push_many(self, batch: Sequence[tuple[str, np.ndarray, int]]) -> list[tuple[str, Event]]:
        """`push` for many streams at once: (stream id, scores [T, classes], step0) each; events in batch order."""
        batch = [entry for entry in batch if len(entry[1])]
        if not batch or len(self._keywords) == 0:
            return []
        scores = np.concatenate([entry[1] for entry in batch])
        probs = _softmax(scores) if self.params.scores_are_logits else scores
        keyword_probs = np.ascontiguousarray(probs[:, self._keywords], dtype=np.float32)
        lengths = np.fromiter((len(entry[1]) for entry in batch), np.intp, len(batch))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        hot_rows = keyword_probs.max(axis=1) >= self._min_threshold
        hot_streams = np.logical_or.reduceat(hot_rows, starts).tolist()
        window = self.params.smoothing_steps - 1
        events: list[tuple[str, Event]] = []
        for (stream_id, _, step0), start, length, hot in zip(
            batch, starts.tolist(), lengths.tolist(), hot_streams, strict=True
        ):
            state = self._state(stream_id)
            chunk = keyword_probs[start : start + length]
            if not hot and not state.hot:  # cold: nothing can fire; keep the window exact for later
                if window:
                    state.history = (
                        chunk[length - window :].copy()
                        if length >= window
                        else np.concatenate([state.history, chunk])[-window:]
                    )
                state.seen_steps += length
                continue
            events.extend((stream_id, event) for event in self._push_hot(state, chunk, step0))
        return events

    def _push_hot(self, state: _StreamState, keyword_probs: np.ndarray, step0: int) -> list[Event]:
        smoothed = self._smooth(state, keyword_probs)
        above = smoothed >= self._thresholds
        if not above.any():
            state.run_steps[:] = 0
            state.armed[:] = True
            events: list[Event] = []
        else:
            events = self._scan(state, smoothed, above, step0)
        state.hot = bool((state.history >= self._min_threshold).any() or state.run_steps.any() or not state.armed.all())
        return events

    def _scan(self, state: _StreamState, smoothed: np.ndarray, above: np.ndarray, step0: int) -> list[Event]:
        events = []
        for offset in range(len(smoothed)):
            state.run_steps = np.where(above[offset], state.run_steps + 1, 0)
            state.armed |= ~above[offset]
            step = step0 + offset
            ready = (state.run_steps >= self.params.patience_steps) & state.armed
            if not ready.any() or step < state.quiet_until_step:
                continue
            best = int(np.argmax(np.where(ready, smoothed[offset], -1.0)))
            label = self.params.labels[self.params.keywords[best]]
            events.append(Event(label, float(smoothed[offset, best]), step, (step + 1) * self.params.step_period_s))
            state.armed &= ~above[offset]  # every keyword over threshold now belongs to this utterance
            state.quiet_until_step = step + 1 + self.params.refractory_steps
        return events

    def reset(self, stream_id: str) -> None:
        """Forget a stream's smoothing, patience and refractory state (after a reset or gap reset)."""
        self._streams.pop(stream_id, None)

    end = reset

    def __len__(self) -> int:
        return len(self._streams)
