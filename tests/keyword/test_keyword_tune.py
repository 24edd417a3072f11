"""Detection defaults chosen on validation: per-keyword thresholds and the (smoothing, patience) setting."""

from __future__ import annotations

import numpy as np

from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword.assemble import Occurrence
from streamer.train.keyword.dataset import FeatureStream
from streamer.train.keyword.tune import detection_grid, tune

PARAMS = LogMelParams()
DETECTION_GRID = detection_grid(PARAMS)
STEPS = 3000  # 30 s of 10 ms steps
POSITIVE_STEPS = (500, 1500, 2500)
SPIKE_STEPS = (1000, 2000)


def _validation(positive_score: float, spike_steps: int) -> tuple[np.ndarray, list[FeatureStream]]:
    """One keyword: three keywords scored `positive_score` for 60 steps, two brief spikes of 1.0 in between."""
    keyword = np.full(STEPS, 0.01, np.float32)
    occurrences = []
    for step in POSITIVE_STEPS:
        keyword[step : step + 60] = positive_score
        start = step * PARAMS.hop_samples + PARAMS.win_samples  # samples whose steps lie inside the 60
        occurrences.append(Occurrence(0, start, start + 40 * PARAMS.hop_samples))
    for step in SPIKE_STEPS:
        keyword[step : step + spike_steps] = 1.0
    probabilities = np.stack([1.0 - keyword, keyword], axis=1)
    stream = FeatureStream(np.zeros((STEPS, PARAMS.n_mels), np.float16), np.zeros(STEPS, np.int8), occurrences)
    return probabilities, [stream]


def test_brief_spikes_are_outlasted_by_a_longer_smoothing() -> None:
    # A 5-step spike of 1.0 stays ≥ 0.6 for 5 steps under the default 5-step average, so with patience 3 no
    # threshold passes the 0.7 keywords and stops the spikes; an 8-step average keeps the spike under 0.63.
    probabilities, streams = _validation(0.7, spike_steps=5)
    tuning = tune(probabilities, ["_background", "kw"], streams, PARAMS, target_fa_per_hour=1.0)
    assert (tuning.detection["smoothing_steps"], tuning.detection["patience_steps"]) == (8, 4)
    assert tuning.validation["frr"] == 0.0 and tuning.validation["fa_per_hour"] == 0.0
    assert 0.625 <= tuning.detection["thresholds"]["kw"] <= 0.7
    tried = {(t["smoothing_steps"], t["patience_steps"]): t for t in tuning.validation["detection_settings_tried"]}
    assert set(tried) == set(DETECTION_GRID)
    assert tried[DETECTION_GRID[0]]["frr"] == 1.0  # the default setting had to miss everything to stay quiet


def test_the_default_setting_wins_ties() -> None:
    probabilities, streams = _validation(0.9, spike_steps=1)  # nothing to separate: every setting is perfect
    tuning = tune(probabilities, ["_background", "kw"], streams, PARAMS, target_fa_per_hour=1.0)
    assert (tuning.detection["smoothing_steps"], tuning.detection["patience_steps"]) == DETECTION_GRID[0]
    assert tuning.validation["frr"] == 0.0


def test_the_grid_is_the_same_time_at_any_hop() -> None:
    """The (smoothing, patience) settings are spans of time: whole steps of the model's hop, halves rounded up."""
    assert detection_grid(LogMelParams()) == [(5, 3), (3, 2), (2, 1), (8, 4)]
    assert detection_grid(LogMelParams(hop_ms=20.0, win_ms=32.0)) == [(3, 2), (2, 1), (1, 1), (4, 2)]
