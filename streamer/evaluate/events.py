"""Score streams → keyword events exactly as `streamer.detect.Detector` fires them, fast enough to sweep thresholds.

The Detector's rule: per keyword, a causal moving average over `smoothing_steps`; a keyword is ready when that
average has been ≥ its threshold for `patience_steps` consecutive steps and it is armed (it is disarmed by an
event fired while it was over threshold, and re-armed when it falls below). The best ready keyword fires, unless
the stream is inside the refractory period after its previous event (then it fires at the end of the period if
still ready). Here the same rule runs per event, not per step: intervals of "sustained over threshold" per
keyword, walked in time order. tests/keyword/test_events.py checks the equality against the Detector itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamer.detect import DetectionParams


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def smooth(scores: np.ndarray, smoothing_steps: int) -> np.ndarray:
    """Causal moving average over the last `smoothing_steps` steps (fewer at the start), float32 as the Detector."""
    sums = np.cumsum(np.concatenate([np.zeros((1, scores.shape[1])), scores.astype(np.float64)]), axis=0)
    steps = np.arange(1, len(scores) + 1)
    starts = np.maximum(steps - smoothing_steps, 0)
    counts = steps - starts
    return ((sums[steps] - sums[starts]) / counts[:, None]).astype(np.float32)


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and last index of each run of True."""
    padded = np.concatenate(([False], flags, [False]))
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return changes[0::2], changes[1::2] - 1


@dataclass(frozen=True)
class Events:
    """Events of one stream: the step where each fired and the keyword (index into EventTrack.labels)."""

    steps: np.ndarray
    keywords: np.ndarray


class EventTrack:
    """One stream's scores prepared once, then `events(thresholds)` for any per-keyword thresholds."""

    def __init__(self, scores: np.ndarray, params: DetectionParams) -> None:
        probabilities = softmax(scores) if params.scores_are_logits else scores
        self.labels = tuple(params.labels[k] for k in params.keywords)
        self.smoothed = smooth(probabilities[:, list(params.keywords)], params.smoothing_steps)
        self.patience_steps = params.patience_steps
        self.refractory_steps = params.refractory_steps

    def events(self, thresholds: Sequence[float]) -> Events:
        count = len(self.labels)
        above = self.smoothed >= np.asarray(thresholds, np.float32)
        intervals = []  # per keyword: (first ready step, last step) of each stretch of "over for patience steps"
        run_ids = []  # per keyword and step: which run of "above" the step belongs to
        for k in range(count):
            starts, lasts = _runs(above[:, k])
            keep = lasts - starts + 1 >= self.patience_steps
            intervals.append((starts[keep] + self.patience_steps - 1, lasts[keep], np.flatnonzero(keep)))
            run_ids.append(np.cumsum(np.concatenate(([False], above[1:, k] & ~above[:-1, k]))) + above[0, k] - 1)
        pointer = [0] * count
        disarmed_run = [-1] * count
        quiet_until = 0
        fired_steps: list[int] = []
        fired_keywords: list[int] = []
        while True:
            candidates = []
            for k in range(count):
                first, last, run = intervals[k]
                while pointer[k] < len(first) and (
                    last[pointer[k]] < quiet_until or run[pointer[k]] == disarmed_run[k]
                ):
                    pointer[k] += 1
                if pointer[k] < len(first):
                    candidates.append((max(int(first[pointer[k]]), quiet_until), k))
            if not candidates:
                break
            step = min(c[0] for c in candidates)
            ready = [k for s, k in candidates if s == step]
            best = max(ready, key=lambda k: (self.smoothed[step, k], -k))
            fired_steps.append(step)
            fired_keywords.append(best)
            for k in range(count):
                if above[step, k]:
                    disarmed_run[k] = int(run_ids[k][step])
            quiet_until = step + 1 + self.refractory_steps
        return Events(np.asarray(fired_steps, np.int64), np.asarray(fired_keywords, np.int64))
