"""DET arithmetic on synthetic score streams with known answers: hits, misses, false accepts, latency, points."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.detect import DetectionParams
from streamer.evaluate.det import Outcome, Truth, allocate, operating_point, score, span_to_steps, sweep
from streamer.evaluate.events import EventTrack

LABELS = ["_background", "hey", "stop"]
STEP_S = 0.01


def _params(**detection: object) -> DetectionParams:
    base = {"smoothing_steps": 1, "patience_steps": 1, "refractory_s": 0.0, **detection}
    params = DetectionParams.resolve(LABELS, {"streamer.detection": json.dumps(base)}, STEP_S)
    assert params is not None
    return params


def _stream(steps: int, bumps: list[tuple[int, int, int, float]]) -> np.ndarray:
    """Probabilities: background everywhere, `bumps` (keyword, first step, length, height) on top."""
    probs = np.zeros((steps, len(LABELS)), np.float32)
    probs[:, 0] = 1.0
    for keyword, first, length, height in bumps:
        probs[first : first + length, 1 + keyword] = height
        probs[first : first + length, 0] = 1.0 - height
    return probs


def test_known_hits_misses_false_accepts_and_latency() -> None:
    # Positives of "hey" end at steps 100, 300, 500 and of "stop" at 700. The model fires "hey" 5 steps after the
    # first end, 12 after the second, misses the third, fires "stop" at 700 on time, and fires "hey" falsely twice
    # (at 900, far from any keyword, and at 695, inside the "stop" window: the wrong keyword is a false accept).
    probs = _stream(
        1000, [(0, 105, 10, 0.9), (0, 312, 10, 0.8), (1, 700, 10, 0.95), (0, 900, 5, 0.7), (0, 695, 3, 0.6)]
    )
    truth = Truth(
        keyword=np.array([0, 0, 0, 1]),
        start_step=np.array([60, 260, 460, 650]),
        end_step=np.array([100, 300, 500, 700]),
    )
    track = EventTrack(probs, _params())
    hours = 2.0
    both = score(track, truth, [0.5, 0.5], negative_hours=hours, tolerance_after_steps=50)
    assert (both.positives, both.misses, both.false_accepts) == (4, 1, 2)
    assert both.fa_per_hour == pytest.approx(1.0)
    assert sorted(both.latencies_steps.tolist()) == [0, 5, 12]
    # Above 0.75 only the two tall "hey" bumps and "stop" remain: no false accepts, one miss.
    high = score(track, truth, [0.75, 0.75], negative_hours=hours, tolerance_after_steps=50)
    assert (high.misses, high.false_accepts) == (1, 0)
    # Between 0.8 and 0.9 the second hit is lost too.
    higher = score(track, truth, [0.85, 0.85], negative_hours=hours, tolerance_after_steps=50)
    assert (higher.misses, higher.false_accepts) == (2, 0)
    # A tolerance shorter than the late hit turns it into a miss AND a false accept.
    strict = score(track, truth, [0.75, 0.75], negative_hours=hours, tolerance_after_steps=10)
    assert (strict.misses, strict.false_accepts) == (2, 1)
    curve = sweep(track, truth, negative_hours=hours, tolerance_after_steps=50, grid=np.array([0.55, 0.65, 0.75]))
    assert [round(o.thresholds[0], 2) for o in curve] == [0.75, 0.65, 0.55]
    assert [o.false_accepts for o in curve] == [0, 1, 2]
    assert operating_point(curve, 0.5) is curve[0]
    assert operating_point(curve, 0.0) is curve[0]
    assert operating_point(curve, 1.0) is curve[0]  # more FAs buy no fewer misses: the stricter point wins
    none = sweep(track, truth, negative_hours=hours, tolerance_after_steps=50, grid=np.array([0.5]))
    assert operating_point(none, 0.5) is None  # unreachable is reported as such, never as 0 %


def test_a_repeat_inside_one_window_is_a_false_accept() -> None:
    probs = _stream(400, [(0, 100, 5, 0.9), (0, 140, 5, 0.9)])
    truth = Truth(np.array([0]), np.array([60]), np.array([100]))
    outcome = score(EventTrack(probs, _params()), truth, [0.5, 0.5], negative_hours=1.0, tolerance_after_steps=100)
    assert (outcome.misses, outcome.false_accepts) == (0, 1)
    # The Detector's refractory period (1 s) suppresses the repeat: one event per utterance.
    quiet = score(
        EventTrack(probs, _params(refractory_s=1.0)), truth, [0.5, 0.5], negative_hours=1.0, tolerance_after_steps=100
    )
    assert (quiet.misses, quiet.false_accepts) == (0, 0)


@settings(max_examples=50, deadline=None)
@given(
    layout=st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.integers(0, 30)), min_size=1, max_size=12),
    false_alarms=st.lists(st.integers(0, 1), max_size=6),
)
def test_counts_match_construction(layout: list[tuple[int, bool, int]], false_alarms: list[int]) -> None:
    """Positives every 400 steps, each detected (after `delay` steps) or not; false alarms in between."""
    bumps, keywords, starts, ends = [], [], [], []
    for i, (keyword, detected, delay) in enumerate(layout):
        end = 400 * i + 200
        keywords.append(keyword)
        starts.append(end - 50)
        ends.append(end)
        if detected:
            bumps.append((keyword, end + delay, 4, 0.9))
    first_free = 400 * len(layout) + 200
    for j, keyword in enumerate(false_alarms):
        bumps.append((keyword, first_free + 100 * j, 4, 0.9))
    probs = _stream(first_free + 100 * len(false_alarms) + 10, bumps)
    truth = Truth(np.array(keywords), np.array(starts), np.array(ends))
    outcome = score(EventTrack(probs, _params()), truth, [0.5, 0.5], negative_hours=0.5, tolerance_after_steps=40)
    detected = [delay for _, hit, delay in layout if hit]
    assert outcome.positives == len(layout)
    assert outcome.misses == len(layout) - len(detected)
    assert outcome.false_accepts == len(false_alarms)
    assert outcome.fa_per_hour == pytest.approx(2 * len(false_alarms))
    assert sorted(outcome.latencies_steps.tolist()) == sorted(detected)


def test_span_to_steps_matches_frame_layout() -> None:
    # Frame k holds samples [160k, 160k + 400). Sample 0 is first seen by frame 0; sample 400 by frame 1.
    start, end = span_to_steps(np.array([0, 399, 400, 1000]), np.array([400, 401, 560, 1761]), hop=160, win=400)
    assert start.tolist() == [0, 0, 1, 4]
    # A span ending at sample e (exclusive) ends in the first frame with 160k + 400 ≥ e.
    assert end.tolist() == [0, 1, 1, 9]


def _outcome(threshold: float, misses: int, false_accepts: int) -> Outcome:
    return Outcome((threshold,), 10, misses, false_accepts, float(false_accepts), np.zeros(0, np.int64))


def test_allocate_spends_the_false_accept_budget_where_it_saves_most_misses() -> None:
    quiet = [_outcome(0.99, 6, 0), _outcome(0.9, 1, 0), _outcome(0.5, 0, 3)]  # no FA until very low
    noisy = [_outcome(0.999, 5, 0), _outcome(0.99, 2, 1), _outcome(0.9, 0, 4)]
    picks = allocate([quiet, noisy], max_false_accepts=1)
    assert picks is not None
    assert [p.thresholds[0] for p in picks] == [0.9, 0.99]  # 1 + 2 misses, 1 false accept
    assert allocate([quiet, noisy], max_false_accepts=0) == [quiet[1], noisy[0]]
    assert allocate([[_outcome(0.9, 0, 2)]], max_false_accepts=1) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 4)), min_size=1, max_size=5), min_size=1, max_size=4),
    st.integers(0, 8),
)
def test_allocate_equals_brute_force(raw: list[list[tuple[int, int]]], budget: int) -> None:
    import itertools

    curves = [[_outcome(1.0 - 0.01 * i, m, f) for i, (m, f) in enumerate(curve)] for curve in raw]
    feasible = [c for c in itertools.product(*curves) if sum(o.false_accepts for o in c) <= budget]
    picks = allocate(curves, budget)
    if not feasible:
        assert picks is None
        return
    assert picks is not None and len(picks) == len(curves)
    assert all(p in curve for p, curve in zip(picks, curves, strict=True))
    assert sum(p.false_accepts for p in picks) <= budget
    assert sum(p.misses for p in picks) == min(sum(o.misses for o in c) for c in feasible)
