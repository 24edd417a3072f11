"""The shipped sensor models: contract and frontend metadata, streaming through Pipeline equals one offline run,
and (with the data installed) the held-out figures their cards claim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.frontend.sensor import sensor_offline
from streamer.model.contract import ModelSpec, open_session
from streamer.pipeline import Pipeline
from streamer.train.datasets import SensorRecording

ROOT = Path(__file__).resolve().parents[2]
MODELS = {"watch": ROOT / "models" / "watch", "basicmotions": ROOT / "models" / "basicmotions"}
RATES_HZ = {"watch": 50, "basicmotions": 10}
TARGETS = {"watch": 0.90, "basicmotions": 0.95}  # issue 6: held-out accuracy at the last step


def sample(name: str) -> tuple[np.ndarray, dict[str, object]]:
    folder = MODELS[name]
    return np.load(folder / "sample.npy"), json.loads((folder / "sample.npy.json").read_text())


def offline_scores(name: str, samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """The reference: the whole recording's features in one onnxruntime call from zero state."""
    spec = ModelSpec.load(MODELS[name] / "model.onnx")
    assert spec.frontend is not None
    features = sensor_offline(samples, rate_hz, {k: v for k, v in spec.frontend.items() if k != "kind"}, 6)
    feeds = {spec.data_input: features[None]} | {s.input: s.zeros(1) for s in spec.states}
    return open_session(spec.path).run([spec.output], feeds)[0][0]


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_declares_its_sensor_frontend_and_labels(name: str) -> None:
    spec = ModelSpec.load(MODELS[name] / "model.onnx")
    assert spec.frontend is not None and spec.frontend["kind"] == "sensor"
    assert spec.frontend["sample_rate_hz"] == RATES_HZ[name] and spec.frontend["channels"] == spec.feature_dim == 6
    assert len(spec.frontend["mean"]) == len(spec.frontend["std"]) == 6
    assert len(spec.labels) == spec.num_classes == (7 if name == "watch" else 4)
    _, sidecar = sample(name)
    assert sidecar["rate_hz"] == RATES_HZ[name]


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_pipeline_any_chunking_with_other_streams_equals_offline(name: str, seed: int) -> None:
    samples, _ = sample(name)
    samples = samples[:600]
    rate_hz = RATES_HZ[name]
    expected = offline_scores(name, samples, rate_hz)
    rng = np.random.default_rng(seed)
    other = rng.normal(size=(len(samples), 6)).astype(np.float32)
    pipeline = Pipeline(MODELS[name] / "model.onnx")
    got: list[np.ndarray] = []
    start = 0
    while start < len(samples):
        frames = int(rng.choice([1, 1, 2, 7, 50]))
        scores = pipeline.push({"dev": samples[start : start + frames], "noise": other[start : start + frames]})
        got.append(scores["dev"])
        start += frames
    np.testing.assert_allclose(np.concatenate(got), expected, atol=2e-5)


@pytest.mark.parametrize("name", MODELS)
def test_a_producer_at_twice_the_rate_is_resampled_to_the_model(name: str) -> None:
    """A 2× rate device (upsampled copy of the sample) gets about the same predictions as the native one."""
    samples, _ = sample(name)
    rate_hz = RATES_HZ[name]
    doubled = np.repeat(samples, 2, axis=0)  # sample-and-hold at 2×: close to the original after low-pass
    pipeline = Pipeline(MODELS[name] / "model.onnx")
    native = pipeline.push({"native": samples}, rate_hz=rate_hz)["native"].argmax(axis=1)
    fast = pipeline.push({"fast": doubled}, rate_hz=2 * rate_hz)["fast"].argmax(axis=1)
    assert len(fast) >= len(native) - 20
    assert np.mean(fast == native[: len(fast)]) > 0.9


def _held_out_or_skip(name: str, card: dict[str, Any]) -> list[SensorRecording]:
    from streamer.errors import ConfigError
    from streamer.train.datasets import load_basicmotions, load_watch

    try:
        if name == "watch":
            held_out = set(card["config"]["test_subjects"])
            return [r for r in load_watch().recordings if r.subject in held_out]
        return load_basicmotions("test").recordings
    except ConfigError as exc:
        pytest.skip(f"sensor data sets not installed ({exc})")


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_meets_the_target_and_its_card(name: str) -> None:
    card = json.loads((MODELS[name] / "metrics.json").read_text())
    recordings = _held_out_or_skip(name, card)
    assert len(recordings) == card["test"]["recordings"]
    pipeline = Pipeline(MODELS[name] / "model.onnx")
    scores = pipeline.push({f"r{i}": r.samples for i, r in enumerate(recordings)})
    last = np.array([scores[f"r{i}"][-1].argmax() == r.label for i, r in enumerate(recordings)])
    assert last.mean() == pytest.approx(card["test"]["accuracy_last_step"])
    assert last.mean() >= TARGETS[name]


def test_snapshot_and_restore_continue_every_stream_exactly_resampled_ones_too(tmp_path: Path) -> None:
    samples, _ = sample("watch")
    native, doubled = samples[:500], np.repeat(samples[:250], 2, axis=0)
    rates = {"native": 50, "doubled": 100}
    whole = Pipeline(MODELS["watch"] / "model.onnx").push({"native": native, "doubled": doubled}, rate_hz=rates)

    before = Pipeline(MODELS["watch"] / "model.onnx")
    head = before.push({"native": native[:201], "doubled": doubled[:333]}, rate_hz=rates)
    before.snapshot(tmp_path / "state.npz")
    after = Pipeline(MODELS["watch"] / "model.onnx")
    after.restore(tmp_path / "state.npz")
    tail = after.push({"native": native[201:], "doubled": doubled[333:]}, rate_hz=rates)
    for stream_id in rates:
        np.testing.assert_allclose(
            np.concatenate([head[stream_id], tail[stream_id]]), whole[stream_id], rtol=0, atol=1e-6
        )
