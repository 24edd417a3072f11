"""Sensor frontend: any chunking equals the offline features, the resampler is accurate, bad input is contained."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.errors import ChunkError, ModelError
from streamer.frontend import build_frontend, push_each
from streamer.frontend.sensor import SensorFrontend, sensor_offline

MODEL_RATE_HZ = 50
PARAMS: dict[str, Any] = {
    "kind": "sensor",
    "sample_rate_hz": MODEL_RATE_HZ,
    "channels": 4,
    "input_channels": ["gx", "ax", "ay", "temp"],
    "channel_order": ["ax", "ay", "gx"],  # selection and reordering
    "mean": [0.5, -1.0, 2.0],
    "std": [2.0, 0.5, 4.0],
}
FEATURES = 3


def chunked(frontend: SensorFrontend, stream_id: str, samples: np.ndarray, rate_hz: int, cuts: list[int]) -> np.ndarray:
    bounds = [0, *sorted(cuts), len(samples)]
    parts = [frontend.push({stream_id: (samples[a:b], rate_hz)})[stream_id] for a, b in itertools.pairwise(bounds)]
    return np.concatenate(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate_hz=st.sampled_from([MODEL_RATE_HZ, 10, 25, 48, 52, 100, 200, 1000]),
    frames=st.integers(0, 600),
    cut_fractions=st.lists(st.floats(0, 1, allow_subnormal=False), max_size=12),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_equals_offline_bit_for_bit(
    rate_hz: int, frames: int, cut_fractions: list[float], seed: int
) -> None:
    samples = np.random.default_rng(seed).normal(size=(frames, 4)).astype(np.float32)
    offline = sensor_offline(samples, rate_hz, PARAMS, FEATURES)
    streamed = chunked(
        SensorFrontend(PARAMS, FEATURES), "s", samples, rate_hz, [int(f * frames) for f in cut_fractions]
    )
    assert streamed.dtype == np.float32 and streamed.shape[1] == FEATURES
    np.testing.assert_array_equal(streamed, offline)


def test_streams_interleaved_in_one_frontend_equal_their_own_offline_features() -> None:
    rng = np.random.default_rng(1)
    streams = {
        f"dev{i}": (rng.normal(size=(300 + 37 * i, 4)).astype(np.float32), rate) for i, rate in enumerate([50, 100, 10])
    }
    frontend = SensorFrontend(PARAMS, FEATURES)
    got: dict[str, list[np.ndarray]] = {k: [] for k in streams}
    for start in range(0, 400, 13):
        out = frontend.push({k: (x[start : start + 13], r) for k, (x, r) in streams.items()})
        for k, v in out.items():
            got[k].append(v)
    for k, (x, r) in streams.items():
        np.testing.assert_array_equal(np.concatenate(got[k]), sensor_offline(x, r, PARAMS, FEATURES))


def test_same_rate_is_selection_and_normalisation_only() -> None:
    samples = np.random.default_rng(2).normal(size=(20, 4)).astype(np.float32)
    features = sensor_offline(samples, MODEL_RATE_HZ, PARAMS, FEATURES)
    expected = (samples[:, [1, 2, 0]].astype(np.float64) - PARAMS["mean"]) / PARAMS["std"]
    np.testing.assert_array_equal(features, expected.astype(np.float32))


@pytest.mark.parametrize("rate_hz", [10, 25, 48, 52, 100, 1000])
def test_resampled_sine_and_constant_match_the_signal_at_the_model_rate(rate_hz: int) -> None:
    params = {"sample_rate_hz": MODEL_RATE_HZ, "channel_order": ["a", "g"]}
    frequency_hz, seconds = 2.0, 12
    t = np.arange(rate_hz * seconds) / rate_hz
    samples = np.stack([np.sin(2 * np.pi * frequency_hz * t + 0.3), np.full_like(t, 9.81)], axis=1)
    features = sensor_offline(samples.astype(np.float32), rate_hz, params, 2)
    t_out = np.arange(len(features)) / MODEL_RATE_HZ
    assert abs(len(features) - seconds * MODEL_RATE_HZ) <= 2 * MODEL_RATE_HZ  # only the filter's tail is held back
    settled = t_out > 2.0  # past the start, where frames before the first were taken equal to it
    np.testing.assert_allclose(features[settled, 0], np.sin(2 * np.pi * frequency_hz * t_out[settled] + 0.3), atol=1e-3)
    np.testing.assert_allclose(features[:, 1], 9.81, rtol=1e-6)  # unit DC gain: gravity stays gravity


def test_downsampling_removes_what_the_model_rate_cannot_carry() -> None:
    rate_hz = 200
    t = np.arange(rate_hz * 10) / rate_hz
    alias = np.sin(2 * np.pi * 40.0 * t)[:, None].astype(np.float32)  # 40 Hz would fold to 10 Hz at 50 Hz
    features = sensor_offline(alias, rate_hz, {"sample_rate_hz": 50, "channel_order": ["a"]}, 1)
    assert np.abs(features[100:, 0]).max() < 1e-3


def test_push_validates_every_chunk_before_touching_any_stream() -> None:
    frontend = SensorFrontend(PARAMS, FEATURES)
    good = np.ones((5, 4), np.float32)
    with pytest.raises(ChunkError) as caught:
        frontend.push({"good": (good, 50), "bad": (np.ones((5, 3), np.float32), 50)})
    assert caught.value.stream_id == "bad" and "expected [frames, 4]" in str(caught.value)
    assert frontend.streams == []  # all or nothing


@pytest.mark.parametrize(
    ("samples", "rate_hz", "needle"),
    [
        (np.ones((5, 6), np.float32), 50, "expected [frames, 4]"),
        (np.array([[1, 2, np.nan, 4]], np.float32), 50, "non-finite value nan at frame 0, channel 2"),
        (np.array([[1, np.inf, 3, 4]], np.float32), 50, "non-finite"),
        (np.ones((5, 4), np.float32), 100, "differs from this stream's first chunk (50 Hz)"),
        (np.ones((5, 4), np.int16), 50, "no int16_scale"),
        (np.ones((5, 4), np.int32), 50, "dtype int32"),
        (np.ones((5, 4), np.float32), 0, "rate_hz is 0"),
        # 1 Hz into this 50 Hz model would be 50x the rows: at most 8x upsampling (7 Hz and up)
        (np.ones((5, 4), np.float32), 6, "input below 7 Hz is refused for this 50 Hz model (at most 8x upsampling)"),
    ],
)
def test_bad_chunk_is_refused_for_its_stream_and_others_stay_exact(
    samples: np.ndarray, rate_hz: int, needle: str
) -> None:
    rng = np.random.default_rng(3)
    frontend = SensorFrontend(PARAMS, FEATURES)
    bystander = rng.normal(size=(200, 4)).astype(np.float32)
    victim = rng.normal(size=(100, 4)).astype(np.float32)
    first = frontend.push({"ok": (bystander[:100], 100), "victim": (victim, 50)})
    features, errors = push_each(frontend, {"ok": (bystander[100:], 100), "victim": (samples, rate_hz)})
    assert list(errors) == ["victim"] and needle in str(errors["victim"]) and "'victim'" in str(errors["victim"])
    np.testing.assert_array_equal(
        np.concatenate([first["ok"], features["ok"]]), sensor_offline(bystander, 100, PARAMS, FEATURES)
    )
    # the refused chunk left the victim as it was: its next good chunk continues exactly
    more = rng.normal(size=(40, 4)).astype(np.float32)
    after = frontend.push({"victim": (more, 50)})["victim"]
    expected = sensor_offline(np.concatenate([victim, more]), 50, PARAMS, FEATURES)
    np.testing.assert_array_equal(np.concatenate([first["victim"], after]), expected)


def test_a_rate_whose_filter_would_be_too_long_is_refused_for_that_stream() -> None:
    frontend = SensorFrontend(PARAMS, FEATURES)
    with pytest.raises(ChunkError, match="99991 Hz to 50 Hz needs 50 phases"):
        frontend.push({"prime": (np.ones((5, 4), np.float32), 99_991)})  # a prime rate: no short polyphase filter
    assert frontend.streams == []


def test_int16_is_scaled_when_the_model_says_how() -> None:
    params = {**PARAMS, "int16_scale": 0.01}
    counts = np.array([[100, 200, -300, 5]], np.int16)
    got = sensor_offline(counts, 50, params, FEATURES)
    np.testing.assert_allclose(got, [[(2.0 - 0.5) / 2.0, (-3.0 + 1.0) / 0.5, (1.0 - 2.0) / 4.0]], rtol=1e-6)


def test_end_forgets_the_rate_so_a_new_stream_may_use_another() -> None:
    frontend = SensorFrontend(PARAMS, FEATURES)
    frontend.push({"s": (np.ones((3, 4), np.float32), 50)})
    assert frontend.end("s") and not frontend.end("s")
    assert frontend.push({"s": (np.ones((300, 4), np.float32), 100)})["s"].shape[1] == FEATURES


def test_short_gap_is_filled_by_holding_the_last_frame_long_gap_resets() -> None:
    rng = np.random.default_rng(4)
    before, after = rng.normal(size=(60, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)
    frontend = SensorFrontend({**PARAMS, "max_fill_s": 0.5}, FEATURES)
    head = frontend.push({"s": (before, 100)})["s"]
    filled = frontend.bridge_gap("s", 0.2)
    assert filled is not None
    tail = frontend.push({"s": (after, 100)})["s"]
    held = np.repeat(before[-1:], 20, axis=0)
    expected = sensor_offline(np.concatenate([before, held, after]), 100, PARAMS, FEATURES)
    np.testing.assert_array_equal(np.concatenate([head, filled, tail]), expected)

    assert frontend.bridge_gap("s", 0.51) is None  # too long: the stream starts afresh
    assert frontend.streams == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"channel_order": ["ax", "zz", "gx"]}, "not among the input channels"),
        ({"std": [1.0, 0.0, 1.0]}, "must be positive"),
        ({"mean": [1.0, 2.0]}, "expected 3 finite numbers"),
        ({"sample_rate_hz": 0}, "sample_rate_hz"),
        ({"channels": 5}, "disagree"),
    ],
)
def test_inconsistent_metadata_is_a_model_error(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(ModelError, match=needle):
        build_frontend({**PARAMS, **change}, FEATURES)


def test_registered_as_kind_sensor() -> None:
    frontend = build_frontend(PARAMS, FEATURES)
    assert isinstance(frontend, SensorFrontend)
    assert (frontend.sample_rate_hz, frontend.channels, frontend.step_period_s) == (50, 4, 0.02)
