"""Keyword events through a real daemon equal the Detector run offline on the same scores; one per utterance."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import DaemonProcess, collect

from streamer import Pipeline
from streamer.client import Producer, Subscriber
from streamer.detect import DetectionParams, Detector

LABELS = ["_background", "hey", "stop"]
RATE_HZ = 100  # sensor frontend at 100 Hz: one step per frame, 10 ms per step
DETECTION = {
    "background": ["_background"],
    "threshold": 0.6,
    "smoothing_steps": 3,
    "patience_steps": 2,
    "refractory_s": 0.5,
}
FRONTEND = {"kind": "sensor", "sample_rate_hz": RATE_HZ, "channels": 3, "channel_order": ["bg", "hey", "stop"]}


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A contract model whose scores are its input frames (a GRU rides along, multiplied by 0): scores we choose."""
    import torch
    from torch import nn

    from streamer.model.export import export_module

    class PassThrough(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(3, 4, 1, batch_first=True)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y, h = self.rnn(x, h)
            return x + 0.0 * y[..., :3], h

    path = tmp_path_factory.mktemp("scripted") / "passthrough.onnx"
    export_module(
        PassThrough(),
        path,
        features=3,
        labels=LABELS,
        scores="probabilities",
        frontend=FRONTEND,
        extra_metadata={"streamer.detection": DETECTION},
    )
    return path


def script() -> np.ndarray:
    """Probabilities [T, 3]: background, a held "hey" (one utterance, 60 steps), noise under threshold, "stop"."""
    probs = np.tile(np.array([[0.9, 0.05, 0.05]], np.float32), (400, 1))
    probs[50:110] = [0.1, 0.85, 0.05]
    probs[150:160] = [0.45, 0.5, 0.05]  # under threshold: no event
    probs[250:280] = [0.1, 0.1, 0.8]
    return probs


def test_daemon_events_equal_offline_detection(
    daemon_factory: Callable[..., DaemonProcess], scripted_model: Path
) -> None:
    daemon = daemon_factory(scripted_model)
    probs = script()
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, ["kws"]) as subscriber:
        time.sleep(0.3)
        for chunk in np.array_split(probs, 23):  # uneven chunks (fewer than the 32 a stream may queue)
            producer.send("kws", chunk, RATE_HZ)
        producer.end("kws")
        messages = collect(subscriber, lambda ms: any(m.header.get("code") == "ended" for m in ms))
    events = [m.header for m in messages if m.kind == "event"]
    scores = Pipeline(scripted_model).push({"x": probs}, rate_hz=RATE_HZ)["x"]
    np.testing.assert_allclose(scores, probs, atol=1e-6)  # the scripted scores came through as scripted
    params = DetectionParams.resolve(LABELS, {"streamer.detection": json.dumps(DETECTION)}, 1 / RATE_HZ)
    assert params is not None
    expected = Detector(params).push("x", scores, 0)
    assert [(e["label"], e["step"]) for e in events] == [(e.label, e.step) for e in expected]
    assert [e["label"] for e in events] == ["hey", "stop"]  # one per utterance, none for the sub-threshold bump
    # the mean of 3 steps reaches 0.85 >= 0.6 at step 52 (0.58 at 51); patience 2 fires at 53, t = 54 steps × 10 ms
    assert events[0]["step"] == 53
    assert events[0]["t_s"] == pytest.approx(0.54)
    assert all(e["v"] == 1 and e["stream"] == "kws" and 0.6 <= e["score"] <= 1 for e in events)


def test_detection_config_overrides_the_model(
    daemon_factory: Callable[..., DaemonProcess], scripted_model: Path
) -> None:
    daemon = daemon_factory(scripted_model, {"detection": {"thresholds": {"stop": 0.9}}})
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, ["kws"]) as subscriber:
        time.sleep(0.3)
        producer.send("kws", script(), RATE_HZ)
        producer.end("kws")
        messages = collect(subscriber, lambda ms: any(m.header.get("code") == "ended" for m in ms))
    assert [m.header["label"] for m in messages if m.kind == "event"] == ["hey"]  # "stop" at 0.8 < 0.9
