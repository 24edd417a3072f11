"""Streaming log-mel invariants: any chunking equals the offline computation; streams never affect each other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.errors import ChunkError, ModelError
from streamer.frontend import build_frontend, push_each
from streamer.frontend.logmel import LogMelFrontend, logmel_offline
from streamer.frontend.melspec import LogMelParams

PARAMS = LogMelParams().to_dict()
RATES_HZ = (8000, 11025, 22050, 44100, 48000)
RESAMPLED_ATOL = 1e-5  # stated tolerance through the resampler (measured: 0.0, bit-exact, with soxr 1.1)


def signal(seed: int, frames: int, channels: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 16000.0
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t)[:, None]
    x = tone + 0.05 * rng.standard_normal((frames, channels))
    if dtype == "int16":
        return np.clip(x * 32767, -32768, 32767).astype(np.int16)
    return x.astype(np.float32)


def chunked(frontend: LogMelFrontend, stream_id: str, x: np.ndarray, sizes: list[int], rate_hz: int) -> np.ndarray:
    outputs, start, i = [], 0, 0
    while start < len(x):
        size = sizes[i % len(sizes)]
        outputs.append(frontend.push({stream_id: (x[start : start + size], rate_hz)})[stream_id])
        start, i = start + size, i + 1
    return np.concatenate(outputs)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    frames=st.integers(0, 6000),
    channels=st.integers(1, 3),
    dtype=st.sampled_from(["int16", "float32"]),
    sizes=st.lists(st.integers(1, 1200), min_size=1, max_size=12),
)
def test_any_chunking_equals_offline_bit_for_bit(seed, frames, channels, dtype, sizes):
    x = signal(seed, frames, channels, dtype)
    offline = logmel_offline(x, PARAMS)
    streamed = chunked(LogMelFrontend(PARAMS, 40), "a", x, sizes, 16000) if frames else offline
    assert streamed.dtype == np.float32
    assert streamed.shape == offline.shape == (max(0, 1 + (frames - 400) // 160), 40)
    np.testing.assert_array_equal(streamed, offline)


def test_one_sample_chunks_equal_offline():
    x = signal(3, 2000, 1, "int16")
    streamed = chunked(LogMelFrontend(PARAMS, 40), "a", x, [1], 16000)
    assert streamed.shape == (11, 40)
    np.testing.assert_array_equal(streamed, logmel_offline(x, PARAMS))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    rate_hz=st.sampled_from(RATES_HZ),
    seconds=st.floats(0.05, 0.6),
    sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=8),
)
def test_resampled_stream_matches_offline_resampling(seed, rate_hz, seconds, sizes):
    x = signal(seed, int(rate_hz * seconds), 1, "float32")
    offline = logmel_offline(x, PARAMS, rate_hz=rate_hz)
    streamed = chunked(LogMelFrontend(PARAMS, 40), "a", x, sizes, rate_hz)
    # The stream resampler holds back its filter delay until more audio comes: measured at most 1,850 output
    # samples (116 ms) for 8 kHz input, 650 (41 ms) for 22.05-48 kHz; so at most 13 frames here.
    assert len(offline) - 13 <= len(streamed) <= len(offline)
    np.testing.assert_allclose(streamed, offline[: len(streamed)], rtol=0, atol=RESAMPLED_ATOL)


@settings(max_examples=15, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 2**31), min_size=2, max_size=6, unique=True),
    sizes=st.lists(st.integers(1, 2500), min_size=1, max_size=6),
    rate_hz=st.sampled_from((16000, 48000)),
)
def test_streams_sharing_a_call_equal_streams_alone(seeds, sizes, rate_hz):
    """Each stream's features depend on its own samples only, not on which streams share its push."""
    signals = {f"s{i}": signal(seed, 3000 + 97 * i, 1, "int16") for i, seed in enumerate(seeds)}
    together, alone = LogMelFrontend(PARAMS, 40), LogMelFrontend(PARAMS, 40)
    got: dict[str, list[np.ndarray]] = {k: [] for k in signals}
    want: dict[str, list[np.ndarray]] = {k: [] for k in signals}
    offsets = dict.fromkeys(signals, 0)
    for step in range(12):
        batch = {}
        for i, (stream_id, x) in enumerate(signals.items()):
            size = sizes[(step + i) % len(sizes)]
            batch[stream_id] = (x[offsets[stream_id] : offsets[stream_id] + size], rate_hz)
            offsets[stream_id] += size
        for stream_id, features in together.push(batch).items():
            got[stream_id].append(features)
        for stream_id, chunk in reversed(batch.items()):
            want[stream_id].append(alone.push({stream_id: chunk})[stream_id])
    for stream_id in signals:
        np.testing.assert_array_equal(np.concatenate(got[stream_id]), np.concatenate(want[stream_id]))


def test_input_far_below_the_models_rate_is_refused_before_any_work():
    """At most 8x upsampling: a tiny chunk claiming rate_hz=1 would otherwise become 16,000x the samples."""
    frontend = LogMelFrontend(PARAMS, 40)
    chunk = signal(9, 4000, 1, "int16")
    _, errors = frontend.push_report({"low": (chunk, 1), "edge": (chunk, 1999), "ok": (chunk, 2000)})
    assert sorted(errors) == ["edge", "low"]
    assert "audio below 2000 Hz is refused for this 16000 Hz model (at most 8x upsampling)" in str(errors["low"])
    assert frontend.streams == ["ok"]  # the refused streams keep nothing
    with pytest.raises(ValueError, match="below 2000 Hz"):
        logmel_offline(chunk, PARAMS, rate_hz=1999)  # the offline reference says the same


def test_downmix_and_channel_selection():
    mono = signal(5, 4000, 1, "float32")
    stereo = np.repeat(mono, 2, axis=1)
    np.testing.assert_array_equal(logmel_offline(stereo, PARAMS), logmel_offline(mono, PARAMS))
    noisy = np.concatenate([mono, signal(6, 4000, 1, "float32")], axis=1)
    first = LogMelFrontend({**PARAMS, "channel": 0}, 40).push({"a": (noisy, 16000)})["a"]
    np.testing.assert_array_equal(first, logmel_offline(mono, PARAMS))


def test_int16_scaling_is_exact():
    x = signal(7, 3000, 1, "int16")
    np.testing.assert_array_equal(logmel_offline(x, PARAMS), logmel_offline(x.astype(np.float32) / 32768, PARAMS))


def test_silence_hits_the_log_floor():
    features = logmel_offline(np.zeros(1600, np.int16), PARAMS)
    np.testing.assert_array_equal(features, np.full((8, 40), np.log(np.float32(1e-6)), np.float32))


def test_bad_chunk_is_refused_for_its_stream_only():
    frontend = LogMelFrontend(PARAMS, 40)
    good = signal(8, 1600, 1, "int16")
    frontend.push({"a": (good, 48000), "b": (good, 16000)})
    cases = {
        "a": (good, 16000),  # rate change mid-stream
        "c": (np.zeros((10, 2, 2), np.float32), 16000),
        "d": (np.array([[np.nan]], np.float32), 16000),
        "e": (np.zeros(10, np.int32), 16000),
        "f": (good, 0),
    }
    with pytest.raises(ChunkError, match=r"'a'.*rate changed from 48000 Hz to 16000 Hz"):
        frontend.push({"b": (good, 16000), **cases})
    features, errors = frontend.push_report({"b": (good, 16000), **cases})
    assert sorted(errors) == sorted(cases)
    assert all(isinstance(e, ChunkError) and e.stream_id == k for k, e in errors.items())
    assert "expected int16 or float32" in str(errors["e"]) and "NaN" in str(errors["d"])
    expected = logmel_offline(np.concatenate([good, good, good]), PARAMS)
    # b's first push (refused as a whole by `push`) consumed nothing; push_report consumed it.
    np.testing.assert_array_equal(features["b"], expected[len(expected) - len(features["b"]) :])
    assert frontend.reset("a") and not frontend.reset("zzz")
    assert len(frontend.push({"a": (good, 16000)})["a"]) == 8  # after reset, another rate is fine


@pytest.mark.parametrize("shape", [(100,), (100, 1), (100, 2)])
def test_channel_index_beyond_the_chunk_is_refused(shape):
    frontend = LogMelFrontend({**PARAMS, "channel": 2}, 40)
    with pytest.raises(ChunkError, match=f"reads channel 2 but the chunk has {([*shape, 1])[1]} channel"):
        frontend.push({"a": (np.zeros(shape, np.float32), 16000)})
    x = signal(9, 1000, 1, "int16")
    selected = LogMelFrontend({**PARAMS, "channel": 0}, 40)
    np.testing.assert_array_equal(selected.push({"a": (x[:, 0], 16000)})["a"], logmel_offline(x, PARAMS))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_mels": 13}, "n_mels=13 but the model takes 40"),
        ({"dither": 0.1}, r"unknown parameter\(s\) \['dither'\]"),
        ({"f_max_hz": 9000.0}, "f_max_hz=9000.0.*8000.0"),
        ({"n_fft": 256}, "n_fft=256, expected an integer ≥ the window \\(400 samples\\)"),
        ({"mel_scale": "mfcc"}, "mel_scale='mfcc'"),
        ({"sample_rate_hz": 16000.5}, "sample_rate_hz=16000.5"),
    ],
)
def test_bad_metadata_is_a_model_error(params, message):
    with pytest.raises(ModelError, match=message):
        build_frontend({**PARAMS, **params}, feature_dim=40)


def test_registry():
    assert isinstance(build_frontend({"kind": "logmel"}, 40), LogMelFrontend)
    with pytest.raises(ModelError, match="unknown kind 'mfcc'; known kinds: \\['logmel', 'sensor', 'waveform'\\]"):
        build_frontend({"kind": "mfcc"}, 40)
    identity = build_frontend(None, 3)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(identity.push({"a": (x, 100)})["a"], x)
    with pytest.raises(ChunkError, match=r"expected \[frames, 3\] features"):
        identity.push({"a": (np.zeros((2, 4), np.float32), 100)})


class PushOnly:
    """A frontend offering only the protocol's `push` (third-party frontends may lack `push_report`)."""

    def __init__(self) -> None:
        self.inner = LogMelFrontend(PARAMS, 40)
        self.sample_rate_hz, self.channels, self.step_period_s = 16000, None, 0.01

    def push(self, chunks):
        return self.inner.push(chunks)

    def reset(self, stream_id):
        return self.inner.reset(stream_id)

    def end(self, stream_id):
        return self.inner.end(stream_id)


def test_push_each_isolates_bad_streams_with_push_only_frontends():
    frontend = PushOnly()
    good = signal(10, 3000, 1, "int16")
    chunks = {"a": (good, 16000), "bad1": (good.astype(np.int32), 16000), "b": (good, 16000), "bad2": (good, -1)}
    features, errors = push_each(frontend, chunks)
    assert sorted(errors) == ["bad1", "bad2"] and sorted(features) == ["a", "b"]
    np.testing.assert_array_equal(features["a"], logmel_offline(good, PARAMS))  # consumed exactly once
    np.testing.assert_array_equal(features["b"], features["a"])


def test_reset_touches_one_stream_only():
    frontend = LogMelFrontend(PARAMS, 40)
    x, y = signal(11, 5000, 1, "int16"), signal(12, 5000, 1, "int16")
    first = frontend.push({"x": (x[:2345], 16000), "y": (y[:2345], 16000)})
    assert frontend.reset("x")
    second = frontend.push({"x": (x, 16000), "y": (y[2345:], 16000)})
    np.testing.assert_array_equal(np.concatenate([first["y"], second["y"]]), logmel_offline(y, PARAMS))
    np.testing.assert_array_equal(second["x"], logmel_offline(x, PARAMS))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    chunk=st.sampled_from([160, 320, 1600, 1601, 399]),
    streams=st.integers(2, 12),
    odd_one=st.sampled_from(["none", "new", "float32", "other_size", "1d"]),
)
def test_uniform_batches_take_the_fast_path_and_equal_offline(seed, chunk, streams, odd_one):
    """The daemon's batch (int16 mono chunks of one size, streams already open) skips the per-stream pass; the
    features and carried tails are the same bits as offline. A batch that is not uniform (a new stream, a float
    chunk, another size) takes the general path, also exactly."""
    sources = {f"s{i}": signal(seed + i, chunk * 9, 1, "int16") for i in range(streams)}
    together = LogMelFrontend(PARAMS, 40)
    general_calls = 0
    consume = together._consume

    def counting(prepared):  # type: ignore[no-untyped-def]
        nonlocal general_calls
        general_calls += 1
        return consume(prepared)

    together._consume = counting  # type: ignore[method-assign]
    fed: dict[str, list[np.ndarray]] = {k: [] for k in sources}
    got: dict[str, list[np.ndarray]] = {k: [] for k in sources}
    for step in range(8):
        batch = {sid: x[step * chunk : (step + 1) * chunk] for sid, x in sources.items()}
        if step == 4 and odd_one == "new":
            sources["late"] = signal(seed, chunk * 9, 1, "int16")[: 4 * chunk]  # joins now, four chunks long
            sources["late"] = np.concatenate([np.zeros((4 * chunk, 1), np.int16), sources["late"]])
            batch["late"] = sources["late"][step * chunk : (step + 1) * chunk]
            fed["late"], got["late"] = [], []
        first = next(iter(sources))
        if step == 4 and odd_one == "other_size":
            batch[first] = batch[first][:-1]
        if step == 4 and odd_one == "1d":
            batch[first] = batch[first][:, 0]  # [n] instead of [n, 1] in the same batch: not uniform
        pushed = {sid: (samples, 16000) for sid, samples in batch.items()}
        if step == 4 and odd_one == "float32":
            pushed[first] = (batch[first].astype(np.float32) / 32768, 16000)  # the same values, as float
        for stream_id, samples in batch.items():
            fed[stream_id].append(samples.reshape(-1))
        for stream_id, features in together.push(pushed).items():
            got[stream_id].append(features)
    if chunk == 1600:  # 10 hops: every stream carries the same 320-sample tail from its first chunk on
        # Step 0 opens every stream (general path); the odd batch at step 4 too; a short chunk leaves its stream
        # a different tail from then on, so every later batch is not uniform either.
        assert general_calls == {"none": 1, "other_size": 5}.get(odd_one, 2)
    for stream_id in sources:
        np.testing.assert_array_equal(
            np.concatenate(got[stream_id]), logmel_offline(np.concatenate(fed[stream_id]), PARAMS)
        )
