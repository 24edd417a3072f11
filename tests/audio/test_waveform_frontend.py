"""Waveform frontend: any chunking gives the offline frames bit for bit; bad metadata is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.errors import ChunkError, ModelError
from streamer.frontend import audio_framing, build_frontend, push_each
from streamer.frontend.waveform import WaveformFrontend, WaveformParams, waveform_offline

PARAMS = WaveformParams(frame_samples=1280).to_dict()


def signal(seed: int, frames: int, channels: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 0.3 * rng.standard_normal((frames, channels))
    if dtype == "int16":
        return np.clip(x * 32767, -32768, 32767).astype(np.int16)
    return x.astype(np.float32)


def chunked(frontend: WaveformFrontend, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    outputs, start, i = [np.zeros((0, frontend.feature_dim), np.float32)], 0, 0
    while start < len(x):
        size = sizes[i % len(sizes)]
        outputs.append(frontend.push({"a": (x[start : start + size], 16000)})["a"])
        start, i = start + size, i + 1
    return np.concatenate(outputs)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    frames=st.integers(0, 9000),
    channels=st.integers(1, 3),
    dtype=st.sampled_from(["int16", "float32"]),
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
)
def test_any_chunking_equals_offline_bit_for_bit(seed, frames, channels, dtype, sizes):
    x = signal(seed, frames, channels, dtype)
    offline = waveform_offline(x, WaveformParams.from_dict(PARAMS))
    streamed = chunked(WaveformFrontend(PARAMS, 1280), x, sizes)
    assert offline.shape == (frames // 1280, 1280) and streamed.dtype == np.float32
    np.testing.assert_array_equal(streamed, offline)


def test_frames_are_the_samples_scaled_to_plus_minus_one():
    x = np.arange(-1280, 1280, dtype=np.int16)
    frames = build_frontend(PARAMS, 1280).push({"a": (x, 16000)})["a"]
    np.testing.assert_array_equal(frames.ravel(), x.astype(np.float32) / 32768)


def test_a_batch_of_streams_equals_each_stream_alone():
    """The daemon's uniform batch (int16 mono chunks of one length) takes a vectorised path: same frames."""
    xs = {f"s{i}": signal(i, 1600 * 5, 1, "int16") for i in range(6)}
    together, alone = WaveformFrontend(PARAMS, 1280), {k: WaveformFrontend(PARAMS, 1280) for k in xs}
    for c in range(5):
        batch = together.push({k: (x[c * 1600 : (c + 1) * 1600], 16000) for k, x in xs.items()})
        for k, x in xs.items():
            one = alone[k].push({k: (x[c * 1600 : (c + 1) * 1600], 16000)})[k]
            np.testing.assert_array_equal(batch[k], one)


def test_other_rates_are_resampled_to_the_models():
    frontend = WaveformFrontend(PARAMS, 1280)
    frames = frontend.push({"a": (signal(1, 48000, 1, "int16"), 48000)})["a"]
    assert frames.shape[1] == 1280 and 11 <= frames.shape[0] <= 12  # 1 s at 16 kHz, less the resampler's delay


def test_a_bad_chunk_is_reported_and_others_go_on():
    frontend = WaveformFrontend(PARAMS, 1280)
    good = signal(2, 2560, 1, "int16")
    features, errors = push_each(frontend, {"ok": (good, 16000), "bad": (good.astype(np.int32), 16000)})
    assert features["ok"].shape == (2, 1280)
    assert isinstance(errors["bad"], ChunkError) and "int32" in str(errors["bad"])


@pytest.mark.parametrize(
    ("spec", "feature_dim", "named"),
    [
        ({**PARAMS, "hop": 3}, 1280, "unknown parameter(s) ['hop']"),
        ({**PARAMS, "frame_samples": 0}, 1280, "frame_samples=0"),
        ({**PARAMS, "sample_rate_hz": 16000.5}, 1280, "sample_rate_hz=16000.5"),
        ({**PARAMS, "channel": -1}, 1280, "channel=-1"),
        (PARAMS, 640, "frame_samples=1280 but the model takes 640"),
    ],
)
def test_bad_metadata_is_refused_with_the_key_and_value(spec, feature_dim, named):
    with pytest.raises(ModelError) as caught:
        build_frontend(spec, feature_dim)
    assert named in str(caught.value)


def test_audio_framing_reads_either_audio_kind():
    assert audio_framing({"kind": "logmel"}) == (400, 160)
    assert audio_framing(PARAMS) == (1280, 1280)
    with pytest.raises(ModelError, match="does not read audio"):
        audio_framing({"kind": "sensor"})
