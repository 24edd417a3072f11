"""Frame targets: a keyword's class over the same span of time after its end, whatever the model's hop."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword.assemble import (
    IGNORE,
    TARGET_AFTER_END_MS,
    TARGET_BEFORE_END_MS,
    Occurrence,
    frame_targets,
    steps_of,
)


@pytest.mark.parametrize(("hop_ms", "win_ms"), [(10.0, 25.0), (20.0, 32.0)])
def test_keyword_class_spans_the_same_time_at_any_hop(hop_ms: float, win_ms: float) -> None:
    params = LogMelParams(hop_ms=hop_ms, win_ms=win_ms)
    rate = params.sample_rate_hz
    occurrence = Occurrence(label=2, start=1 * rate, end=2 * rate)  # a keyword from 1.0 s to 2.0 s
    targets = frame_targets(round(4000 / hop_ms), [occurrence], params)
    step_s = params.step_period_s
    # the first frame that has seen the keyword's last sample
    end_step = -(-(occurrence.end - params.win_samples) // params.hop_samples)
    keyword = np.flatnonzero(targets == 3)
    assert keyword[0] == end_step - steps_of(TARGET_BEFORE_END_MS, hop_ms)
    assert keyword[-1] == end_step + steps_of(TARGET_AFTER_END_MS, hop_ms) - 1
    assert (keyword[-1] - end_step + 1) * step_s == pytest.approx(TARGET_AFTER_END_MS / 1000)
    ignored = np.flatnonzero(targets == IGNORE)
    assert ignored[-1] == keyword[0] - 1  # the second half of the keyword is left to the model
    # from the last frame that ends before the keyword's midpoint
    first_ignored_end = ignored[0] * params.hop_samples + params.win_samples
    assert first_ignored_end <= 1.5 * rate < first_ignored_end + params.hop_samples
    assert set(np.unique(targets)) == {0, IGNORE, 3}


def test_steps_of_rounds_halves_up_and_never_to_zero() -> None:
    assert [steps_of(ms, 10.0) for ms in (30, 200, 5)] == [3, 20, 1]
    assert [steps_of(ms, 20.0) for ms in (30, 200, 10)] == [2, 10, 1]
