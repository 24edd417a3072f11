"""Detection defaults for the exported model, chosen on validation streams (never on the evaluation set)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.detect import DetectionParams
from streamer.evaluate.det import Outcome, Truth, allocate, operating_point, score, span_to_steps, sweep
from streamer.evaluate.events import EventTrack
from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword.dataset import FeatureStream

SMOOTHING_STEPS = 5
PATIENCE_STEPS = 3
REFRACTORY_S = 1.0
TOLERANCE_AFTER_S = 1.0


@dataclass(frozen=True)
class Tuning:
    """The chosen metadata and what it measured on validation."""

    detection: dict[str, Any]
    validation: dict[str, Any]


def validation_truth(streams: Sequence[FeatureStream], params: LogMelParams) -> Truth:
    """Keyword spans of the streams played back to back, in steps."""
    keywords, starts, ends = [], [], []
    offset = 0
    for stream in streams:
        for occ in stream.occurrences:
            start, end = span_to_steps(
                np.array(occ.start), np.array(occ.end), hop=params.hop_samples, win=params.win_samples
            )
            keywords.append(occ.label)
            starts.append(int(start) + offset)
            ends.append(int(end) + offset)
        offset += len(stream.features)
    return Truth(np.array(keywords, np.int64), np.array(starts, np.int64), np.array(ends, np.int64))


def negative_hours(streams: Sequence[FeatureStream], params: LogMelParams) -> float:
    keyword_samples = sum(o.end - o.start for s in streams for o in s.occurrences)
    total_samples = sum(len(s.features) for s in streams) * params.hop_samples
    return (total_samples - keyword_samples) / params.sample_rate_hz / 3600


def tune(
    probabilities: np.ndarray,
    labels: Sequence[str],
    streams: Sequence[FeatureStream],
    params: LogMelParams,
    target_fa_per_hour: float,
) -> Tuning:
    """Per-keyword thresholds: the fewest misses in all with at most `target_fa_per_hour` false accepts in all on
    validation (keywords differ: one may need 0.999 where another is quiet at 0.9). The shared `threshold` is the
    best single threshold there, for keywords a config adds later."""
    base = {
        "background": ["_background"],
        "threshold": 0.5,
        "thresholds": {},
        "smoothing_steps": SMOOTHING_STEPS,
        "patience_steps": PATIENCE_STEPS,
        "refractory_s": REFRACTORY_S,
    }
    resolved = DetectionParams.resolve(labels, {"streamer.detection": json.dumps(base)}, params.step_period_s)
    assert resolved is not None
    track = EventTrack(probabilities, resolved)
    hours = negative_hours(streams, params)
    tolerance = round(TOLERANCE_AFTER_S / params.step_period_s)
    truth = validation_truth(streams, params)
    shared_curve = sweep(track, truth, negative_hours=hours, tolerance_after_steps=tolerance)
    shared: Outcome | None = operating_point(shared_curve, target_fa_per_hour) or shared_curve[0]
    assert shared is not None
    shared_threshold = round(shared.thresholds[0], 6)
    curves = [
        sweep(track, truth, negative_hours=hours, tolerance_after_steps=tolerance, keywords=[k])
        for k in range(len(resolved.keywords))
    ]
    picks = allocate(curves, int(target_fa_per_hour * hours))
    if picks is None:  # no setting within the budget: each keyword at its highest swept threshold
        picks = [curve[0] for curve in curves]
    per_keyword = [round(p.thresholds[0], 6) for p in picks]
    chosen = score(track, truth, per_keyword, negative_hours=hours, tolerance_after_steps=tolerance)
    keyword_labels = [labels[k] for k in resolved.keywords]
    detection = {
        **base,
        "threshold": shared_threshold,
        "thresholds": dict(zip(keyword_labels, per_keyword, strict=True)),
    }
    validation = {
        "negative_hours": round(hours, 3),
        "positives": chosen.positives,
        "threshold": shared_threshold,
        "thresholds": detection["thresholds"],
        "frr": round(chosen.frr, 4),
        "fa_per_hour": round(chosen.fa_per_hour, 3),
        "shared_threshold_frr": round(shared.frr, 4),
        "shared_threshold_fa_per_hour": round(shared.fa_per_hour, 3),
        "target_fa_per_hour": target_fa_per_hour,
    }
    return Tuning(detection, validation)
