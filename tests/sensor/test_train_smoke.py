"""A few-step sensor training on a tiny synthetic set: it learns, exports, and the served ONNX equals torch per step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # training extra; the daemon's tests do not need it

from streamer.model.contract import ModelSpec  # noqa: E402
from streamer.pipeline import Pipeline  # noqa: E402
from streamer.train.datasets import SensorDataset, SensorRecording  # noqa: E402
from streamer.train.sensor import Split, export, recipe, train  # noqa: E402

RATE_HZ = 20


def synthetic_split() -> Split:
    """Two classes a GRU separates in a few steps: a slow sine on channel 0 vs one on channel 1."""
    rng = np.random.default_rng(0)
    t = np.arange(200) / RATE_HZ
    recordings = []
    for index in range(8):
        label = index % 2
        samples = rng.normal(0, 0.3, size=(200, 3)).astype(np.float32)
        samples[:, label] += 2 * np.sin(2 * np.pi * 1.5 * t + index).astype(np.float32)
        samples[:, 2] += 9.81
        recordings.append(SensorRecording(samples, label, index, RATE_HZ))
    dataset = SensorDataset("toy", recordings, ["sine_x", "sine_y"], ["x", "y", "z"], RATE_HZ)
    return Split(dataset, dataset, "toy")


@pytest.mark.parametrize("smoothing_steps", [0, 4])
def test_few_step_training_learns_exports_and_serves_like_torch(tmp_path: Path, smoothing_steps: int) -> None:
    config = recipe(
        "basicmotions",
        iterations=40,
        hidden=8,
        batch=8,
        chain_steps=60,
        crop_min_steps=20,
        learning_rate=2e-2,
        smoothing_steps=smoothing_steps,
    )
    split = synthetic_split()
    result = train(config, split=split, log=lambda line: None)
    assert np.mean(result.losses[-5:]) < 0.5 * np.mean(result.losses[:5])

    path = tmp_path / "toy.onnx"
    exported = export(result, path)
    spec = ModelSpec.load(path)
    assert spec.labels == ["sine_x", "sine_y"] and spec.frontend is not None
    assert spec.frontend["kind"] == "sensor" and spec.frontend["sample_rate_hz"] == RATE_HZ
    assert exported["max_abs_error_vs_torch"] < 1e-5

    recording = split.test.recordings[3].samples
    normalised = ((recording - result.mean) / result.std).astype(np.float32)
    with torch.no_grad():
        logits, _ = result.module(torch.from_numpy(normalised)[None], torch.zeros(1, 1, 8))
    expected = logits[0].numpy()
    if smoothing_steps:  # served: the mean class probability over the last `smoothing_steps` steps seen
        probabilities = torch.softmax(logits[0], dim=-1).numpy()
        expected = np.stack(
            [probabilities[max(0, t - smoothing_steps + 1) : t + 1].mean(0) for t in range(len(probabilities))]
        )
    assert spec.scores == ("probabilities" if smoothing_steps else "logits")
    pipeline = Pipeline(path)
    chunks = [pipeline.push({"toy": recording[a : a + 7]})["toy"] for a in range(0, len(recording), 7)]
    np.testing.assert_allclose(np.concatenate(chunks), expected, atol=1e-5)
