"""The vectorised event walk used for DET sweeps fires exactly what the daemon's Detector fires."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.detect import DetectionParams, Detector
from streamer.evaluate.events import EventTrack

LABELS = ["_background", "hey", "lights", "stop"]


def _params(smoothing: int, patience: int, refractory_s: float, thresholds: list[float]) -> DetectionParams:
    meta = {
        "streamer.detection": json.dumps(
            {
                "smoothing_steps": smoothing,
                "patience_steps": patience,
                "refractory_s": refractory_s,
                "thresholds": dict(zip(LABELS[1:], thresholds, strict=True)),
            }
        )
    }
    params = DetectionParams.resolve(LABELS, meta, step_period_s=0.01)
    assert params is not None
    return params


def _bursty_scores(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Probabilities with keyword bursts of random length, height and overlap, like a real model's output."""
    logits = rng.normal(0.0, 1.0, (steps, len(LABELS)))
    logits[:, 0] += 3.0
    for _ in range(steps // 40):
        start = int(rng.integers(steps))
        length = int(rng.integers(1, 30))
        logits[start : start + length, int(rng.integers(1, len(LABELS)))] += rng.uniform(2.0, 8.0)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    smoothing=st.integers(1, 8),
    patience=st.integers(1, 6),
    refractory_s=st.sampled_from([0.0, 0.03, 0.1, 0.5]),
    thresholds=st.lists(st.floats(0.2, 0.95), min_size=3, max_size=3),
    chunk=st.integers(1, 97),
)
def test_event_walk_equals_detector(
    seed: int, smoothing: int, patience: int, refractory_s: float, thresholds: list[float], chunk: int
) -> None:
    scores = _bursty_scores(np.random.default_rng(seed), 600)
    params = _params(smoothing, patience, refractory_s, thresholds)
    detector = Detector(params)
    expected = []
    for start in range(0, len(scores), chunk):
        expected += [(e.step, e.label) for e in detector.push("s", scores[start : start + chunk], start)]
    walked = EventTrack(scores, params).events(params.thresholds)
    got = [(int(s), LABELS[1 + int(k)]) for s, k in zip(walked.steps, walked.keywords, strict=True)]
    assert got == expected


def test_a_held_score_fires_once_and_refractory_delays_a_second_keyword() -> None:
    scores = np.zeros((300, 4), np.float32)
    scores[:, 0] = 1.0
    scores[10:200, 1] = 0.9  # "hey" held for 1.9 s: one event, not a burst
    scores[10:200, 0] = 0.1
    scores[50:80, 2] = 0.95  # "lights" inside the refractory period after "hey": waits for its end
    params = _params(smoothing=1, patience=3, refractory_s=0.5, thresholds=[0.5, 0.5, 0.5])
    events = EventTrack(scores, params).events(params.thresholds)
    # "hey" fires at step 12 (3rd step over); quiet until 12 + 1 + 50 = 63; "lights" is ready then (above
    # since 50, armed: it was below when "hey" fired), so it fires at 63.
    assert events.steps.tolist() == [12, 63]
    assert events.keywords.tolist() == [0, 1]
