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
from streamer.train.keyword.assemble import StepTiming, steps_of
from streamer.train.keyword.dataset import FeatureStream

# (smoothing, patience) in ms, tried on validation, the first the default: longer smoothing and patience ignore
# brief score spikes at the cost of a few tens of ms of latency; shorter ones fire sooner and catch keywords whose
# score peaks briefly. In steps of 10 ms, on model H's validation: (3, 2) 45.6 % FRR, (5, 3) 46.5 %, (8, 4)
# 51.9 %, (12, 6) 55.8 %, each at <= 1 FA/h. Converted to whole steps of the model's hop by `detection_grid`.
DETECTION_GRID_MS: tuple[tuple[int, int], ...] = ((50, 30), (30, 20), (20, 10), (80, 40))
REFRACTORY_S = 1.0
TOLERANCE_AFTER_S = 1.0


def detection_grid(params: StepTiming) -> list[tuple[int, int]]:
    """DETECTION_GRID_MS in whole steps of the model's hop (at 10 ms: (5, 3), (3, 2), (2, 1), (8, 4)), each
    setting once, in order."""
    grid = [(steps_of(s, params.hop_ms), steps_of(p, params.hop_ms)) for s, p in DETECTION_GRID_MS]
    return list(dict.fromkeys(grid))


@dataclass(frozen=True)
class Tuning:
    """The chosen metadata and what it measured on validation."""

    detection: dict[str, Any]
    validation: dict[str, Any]


def validation_truth(streams: Sequence[FeatureStream], params: StepTiming) -> Truth:
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


def negative_hours(streams: Sequence[FeatureStream], params: StepTiming) -> float:
    keyword_samples = sum(o.end - o.start for s in streams for o in s.occurrences)
    total_samples = sum(len(s.features) for s in streams) * params.hop_samples
    return (total_samples - keyword_samples) / params.sample_rate_hz / 3600


def tune(
    probabilities: np.ndarray,
    labels: Sequence[str],
    streams: Sequence[FeatureStream],
    params: StepTiming,
    target_fa_per_hour: float,
) -> Tuning:
    """Per-keyword thresholds: the fewest misses in all with at most `target_fa_per_hour` false accepts in all on
    validation (keywords differ: one may need 0.999 where another is quiet at 0.9), for each (smoothing, patience)
    of `detection_grid(params)`; the setting with the fewest misses wins (ties: the earlier in the grid). The shared
    `threshold` is the best single threshold at the winning setting, for keywords a config adds later."""
    hours = negative_hours(streams, params)
    truth = validation_truth(streams, params)
    tolerance = round(TOLERANCE_AFTER_S / params.step_period_s)
    budget = int(target_fa_per_hour * hours)
    best: tuple[tuple[int, int, int], dict[str, Any], Outcome, EventTrack] | None = None
    tried = []
    for rank, (smoothing, patience) in enumerate(detection_grid(params)):
        base = {
            "background": ["_background"],
            "threshold": 0.5,
            "thresholds": {},
            "smoothing_steps": smoothing,
            "patience_steps": patience,
            "refractory_s": REFRACTORY_S,
        }
        resolved = DetectionParams.resolve(labels, {"streamer.detection": json.dumps(base)}, params.step_period_s)
        assert resolved is not None
        track = EventTrack(probabilities, resolved)
        curves = [
            sweep(track, truth, negative_hours=hours, tolerance_after_steps=tolerance, keywords=[k])
            for k in range(len(resolved.keywords))
        ]
        picks = allocate(curves, budget)
        if picks is None:  # no setting within the budget: each keyword at its highest swept threshold
            picks = [curve[0] for curve in curves]
        per_keyword = [round(p.thresholds[0], 6) for p in picks]
        chosen = score(track, truth, per_keyword, negative_hours=hours, tolerance_after_steps=tolerance)
        detection = {**base, "thresholds": dict(zip([labels[k] for k in resolved.keywords], per_keyword, strict=True))}
        tried.append(
            {
                "smoothing_steps": smoothing,
                "patience_steps": patience,
                "frr": round(chosen.frr, 4),
                "fa_per_hour": round(chosen.fa_per_hour, 3),
            }
        )
        within = chosen.false_accepts <= budget
        key = (0 if within else 1, chosen.misses if within else chosen.false_accepts, rank)
        if best is None or key < best[0]:
            best = (key, detection, chosen, track)
    assert best is not None
    _, detection, chosen, track = best
    shared_curve = sweep(track, truth, negative_hours=hours, tolerance_after_steps=tolerance)
    shared = operating_point(shared_curve, target_fa_per_hour) or shared_curve[0]
    detection["threshold"] = round(shared.thresholds[0], 6)
    validation = {
        "negative_hours": round(hours, 3),
        "positives": chosen.positives,
        "threshold": detection["threshold"],
        "thresholds": detection["thresholds"],
        "smoothing_steps": detection["smoothing_steps"],
        "patience_steps": detection["patience_steps"],
        "frr": round(chosen.frr, 4),
        "fa_per_hour": round(chosen.fa_per_hour, 3),
        "shared_threshold_frr": round(shared.frr, 4),
        "shared_threshold_fa_per_hour": round(shared.fa_per_hour, 3),
        "target_fa_per_hour": target_fa_per_hour,
        "detection_settings_tried": tried,
    }
    return Tuning(detection, validation)
