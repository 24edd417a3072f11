"""gap_policy bridge on a sensor model: the daemon fills a hole exactly as the library's `bridge_gap` does."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import DaemonProcess, collect

from streamer import Pipeline
from streamer.client import Producer, Subscriber
from streamer.daemon.protocol import encode_ingest

SENSOR = {
    "kind": "sensor",
    "sample_rate_hz": 50,
    "channels": 3,
    "channel_order": ["ax", "ay", "az"],
    "mean": [0.1, -0.2, 0.0],
    "std": [1.5, 2.0, 1.0],
    "max_fill_s": 0.5,
}
CHUNK = 10  # frames per message: 0.2 s at 50 Hz


@pytest.fixture(scope="module")
def sensor_model(export_model: Callable[..., Path]) -> Path:
    return export_model(cell="gru", layers=1, features=3, hidden=8, classes=4, seed=4, frontend=SENSOR)


def offline_with_holes(model: Path, chunks: list[np.ndarray], lost: set[int]) -> np.ndarray:
    """The library's own answer: push each received chunk; for each run of lost ones, `bridge_gap` (or reset)."""
    pipe = Pipeline(model)
    outputs, missing = [], 0
    for index, chunk in enumerate(chunks):
        if index in lost:
            missing += 1
            continue
        if missing:
            filled = pipe.frontend.bridge_gap("x", missing * CHUNK / 50)  # type: ignore[attr-defined]
            if filled is None:
                pipe.reset("x")
            elif len(filled):
                pipe.engine.step({"x": filled})
            missing = 0
        outputs.append(pipe.push({"x": chunk}, rate_hz=50)["x"])
    return np.concatenate(outputs)


@pytest.mark.parametrize("lost", [{3}, {4, 5, 6, 7}], ids=["short hole: held", "long hole: reset"])
def test_bridge_policy_equals_library_bridge_gap(
    daemon_factory: Callable[..., DaemonProcess], sensor_model: Path, lost: set[int]
) -> None:
    daemon = daemon_factory(sensor_model, {"streams": {"gap_policy": "bridge"}, "detection": {"enabled": False}})
    rng = np.random.default_rng(1)
    chunks = [rng.standard_normal((CHUNK, 3)).astype(np.float32) for _ in range(12)]
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, ["imu"]) as subscriber:
        time.sleep(0.3)
        for seq, chunk in enumerate(chunks):
            if seq not in lost:
                producer.socket.send_multipart(encode_ingest("imu", seq, "data", chunk, 50))
        received = len(chunks) - len(lost)
        messages = collect(subscriber, lambda ms: sum(m.kind == "pred" for m in ms) == received)
    preds = sorted((m for m in messages if m.kind == "pred"), key=lambda m: m.header["seq"])
    scores = np.concatenate([m.scores for m in preds if m.scores is not None])
    np.testing.assert_allclose(scores, offline_with_holes(sensor_model, chunks, lost), atol=2e-5)
    codes = [m.header["code"] for m in messages if m.kind == "status"]
    assert codes[0] == "gap"
    assert ("reset" in codes) == (len(lost) * CHUNK / 50 > SENSOR["max_fill_s"])  # type: ignore[operator]
    if len(lost) == 1:  # held frames keep the step count a clock: step0 counts the bridged steps
        after = next(m for m in preds if m.header["seq"] == 4)
        assert after.header["step0"] == 4 * CHUNK
