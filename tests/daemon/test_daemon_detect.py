"""Detector arithmetic on synthetic score streams: smoothing, patience, refractory, one event per utterance."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.detect import DetectionParams, Detector, Event
from streamer.errors import ConfigError

LABELS = ["_background", "hey", "stop"]
STEP_S = 0.01


def params(**overrides: object) -> DetectionParams:
    declared = {
        "background": ["_background"],
        "threshold": 0.5,
        "smoothing_steps": 1,
        "patience_steps": 1,
        "refractory_s": 0.0,
    }
    resolved = DetectionParams.resolve(LABELS, {"streamer.detection": json.dumps(declared)}, STEP_S, overrides)
    assert resolved is not None
    return resolved


def scores_with(keyword_probs: list[float], column: int = 1) -> np.ndarray:
    """Probabilities [T, 3]: `keyword_probs` on `column`, the rest on background."""
    probs = np.zeros((len(keyword_probs), 3), np.float32)
    probs[:, column] = keyword_probs
    probs[:, 0] = 1 - probs[:, column]
    return probs


def run(detector: Detector, scores: np.ndarray, chunk: int = 1000, stream: str = "s") -> list[Event]:
    events = []
    for start in range(0, len(scores), chunk):
        events += detector.push(stream, scores[start : start + chunk], start)
    return events


def test_no_metadata_means_no_detector() -> None:
    assert DetectionParams.resolve(LABELS, {}, STEP_S) is None


def test_one_event_per_utterance_however_long_it_is_held() -> None:
    utterance = [0.0] * 5 + [0.9] * 40 + [0.0] * 5
    events = run(Detector(params()), scores_with(utterance))
    assert [(e.label, e.step) for e in events] == [("hey", 5)]
    assert events[0].t_s == pytest.approx(6 * STEP_S)


def test_two_utterances_separated_by_silence_give_two_events() -> None:
    events = run(Detector(params()), scores_with([0.9] * 10 + [0.1] * 10 + [0.9] * 10))
    assert [e.step for e in events] == [0, 20]


def test_patience_needs_consecutive_steps_over_threshold() -> None:
    detector = Detector(params(patience_steps=3))
    assert run(detector, scores_with([0.9, 0.9, 0.1, 0.9, 0.9, 0.1])) == []
    events = run(Detector(params(patience_steps=3)), scores_with([0.9, 0.9, 0.1, 0.9, 0.9, 0.9]))
    assert [e.step for e in events] == [5]


def test_smoothing_is_a_moving_average_over_the_window() -> None:
    # window 4: averages 0.6/4, 1.2/4, 1.8/4, 2.4/4=0.6 (fires at step 3 of the ramp), not before.
    detector = Detector(params(smoothing_steps=4))
    events = run(detector, scores_with([0.0] * 8 + [0.6] * 6))
    assert [e.step for e in events] == [8 + 3]
    assert events[0].score == pytest.approx(0.6, abs=1e-6)


def test_smoothing_averages_only_the_steps_seen_at_stream_start() -> None:
    events = run(Detector(params(smoothing_steps=10)), scores_with([0.8, 0.8]))
    assert [e.step for e in events] == [0]


def test_refractory_blocks_a_second_keyword_for_its_duration() -> None:
    # "hey" fires at step 0; "stop" rises at step 5 while still inside the 0.1 s (10 steps) refractory time.
    scores = np.zeros((30, 3), np.float32)
    scores[:3, 1] = 0.9
    scores[5:25, 2] = 0.9
    scores[:, 0] = 1 - scores[:, 1:].sum(axis=1)
    events = run(Detector(params(refractory_s=0.1)), scores)
    assert [(e.label, e.step) for e in events] == [("hey", 0), ("stop", 11)]


def test_per_label_threshold_overrides_the_default() -> None:
    scores = scores_with([0.7] * 5, column=2)
    assert run(Detector(params(thresholds={"stop": 0.8})), scores) == []
    assert len(run(Detector(params(thresholds={"hey": 0.8})), scores)) == 1


def test_logits_are_turned_into_probabilities() -> None:
    logits = np.array([[0.0, 5.0, 0.0]] * 3, np.float32)  # softmax of "hey" = 0.987
    declared = json.dumps({"threshold": 0.95, "smoothing_steps": 1, "patience_steps": 1})
    resolved = DetectionParams.resolve(LABELS, {"streamer.detection": declared}, STEP_S, None, scores_are_logits=True)
    assert resolved is not None
    assert [e.label for e in run(Detector(resolved), logits)] == ["hey"]


def test_unknown_label_in_thresholds_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown labels"):
        params(thresholds={"hello": 0.5})


def test_streams_are_independent() -> None:
    detector = Detector(params(patience_steps=2))
    assert detector.push("a", scores_with([0.9]), 0) == []
    assert detector.push("b", scores_with([0.9]), 0) == []  # b's first step does not complete a's patience
    assert [e.step for e in detector.push("a", scores_with([0.9]), 1)] == [1]


def _utterances(draw: st.DrawFn) -> np.ndarray:
    pieces = []
    for _ in range(draw(st.integers(1, 5))):
        column = draw(st.sampled_from([1, 2]))
        level = draw(st.floats(0.0, 1.0))
        length = draw(st.integers(1, 30))
        piece = np.zeros((length, 3), np.float32)
        piece[:, column] = level
        piece[:, 0] = 1 - level
        pieces.append(piece)
    return np.concatenate(pieces)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_events_do_not_depend_on_chunking_or_batching(data: st.DataObject) -> None:
    scores = _utterances(data.draw)
    knobs = {
        "smoothing_steps": data.draw(st.integers(1, 6)),
        "patience_steps": data.draw(st.integers(1, 4)),
        "refractory_s": data.draw(st.sampled_from([0.0, 0.05, 0.2])),
    }
    whole = run(Detector(params(**knobs)), scores)
    chunk = data.draw(st.integers(1, 17))
    assert run(Detector(params(**knobs)), scores, chunk=chunk) == whole
    # push_many over interleaved streams gives each stream its own answer
    detector = Detector(params(**knobs))
    found: dict[str, list[Event]] = {"x": [], "y": []}
    for start in range(0, len(scores), chunk):
        part = scores[start : start + chunk]
        for stream, event in detector.push_many([("x", part, start), ("y", part[::-1].copy(), start)]):
            found[stream].append(event)
    assert found["x"] == whole
    reversed_whole = []
    reference = Detector(params(**knobs))
    for start in range(0, len(scores), chunk):
        reversed_whole += reference.push("y", scores[start : start + chunk][::-1].copy(), start)
    assert found["y"] == reversed_whole


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_never_two_events_without_the_score_dropping_below_threshold(data: st.DataObject) -> None:
    scores = _utterances(data.draw)
    events = run(Detector(params(smoothing_steps=1)), scores)
    for first, second in itertools.pairwise(events):
        column = LABELS.index(second.label)
        between = scores[first.step + 1 : second.step + 1, column]
        assert first.label != second.label or (between < 0.5).any()
