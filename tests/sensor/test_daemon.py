"""A real daemon process serving the shipped watch model over loopback ZeroMQ: per-step answers equal offline, and
bad sensor input (wrong channel count, NaN, a changed rate) gets a status while the other streams stay exact."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from streamer.bench.daemon import DaemonProcess, ours
from streamer.client import Producer, Subscriber
from streamer.daemon.protocol import OutputMessage
from streamer.pipeline import Pipeline

MODEL = Path(__file__).resolve().parents[2] / "models" / "watch" / "model.onnx"
SAMPLE = MODEL.parent / "sample.npy"
STREAMS = ("good", "other", "fast", "wrong-channels", "nan", "rate-change")


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    running = DaemonProcess(ours(MODEL))
    try:
        with running:
            yield running
    finally:
        if running.process.stderr is not None:  # DaemonProcess leaves its stderr pipe open
            running.process.stderr.close()


def collect(subscriber: Subscriber, expected_answers: dict[str, int], timeout_s: float = 30.0) -> list[OutputMessage]:
    """Messages until every stream has its count of answers (pred or per-message status)."""
    seen: list[OutputMessage] = []
    answers = dict.fromkeys(expected_answers, 0)
    deadline_s = time.monotonic() + timeout_s
    while any(answers[s] < n for s, n in expected_answers.items()) and time.monotonic() < deadline_s:
        message = subscriber.recv(timeout_ms=200)
        if message is None or message.stream_id not in answers:
            continue
        seen.append(message)
        if message.kind == "pred" or message.kind == "status":  # a refusal at decoding carries no seq
            answers[message.stream_id] += 1
    assert answers == expected_answers, f"answers {answers}, expected {expected_answers}"
    return seen


def test_daemon_answers_every_step_like_offline_and_contains_bad_sensor_input(daemon: DaemonProcess) -> None:
    recording = np.load(SAMPLE)[:400]
    other = recording[::-1].copy()
    fast = np.repeat(recording, 2, axis=0)  # a 100 Hz device: resampled to the model's 50 Hz by the daemon
    expected = Pipeline(MODEL).push({"good": recording, "other": other, "fast": fast}, rate_hz={"fast": 100})
    sizes = [1, 3, 1, 50, 7, 1, 25] * 20
    cuts = np.cumsum([0, *sizes])
    bounds = [*cuts[cuts < len(recording)].tolist(), len(recording)]
    chunks = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

    with (
        Subscriber(daemon.publish, STREAMS, kinds=("pred", "status")) as subscriber,
        Producer(daemon.ingest) as producer,
    ):
        time.sleep(0.3)
        for index, (a, b) in enumerate(chunks):
            producer.send("good", recording[a:b], rate_hz=50)
            producer.send("other", other[a:b], rate_hz=50)
            producer.send("fast", fast[2 * a : 2 * b], rate_hz=100)
            if index == 3:
                producer.send("wrong-channels", recording[a:b, :3].copy(), rate_hz=50)
                producer.send("nan", np.full((2, 6), np.nan, np.float32), rate_hz=50)
                producer.send("rate-change", recording[a:b], rate_hz=50)
                producer.send("rate-change", recording[a:b], rate_hz=100)
        counts = {"good": len(chunks), "other": len(chunks), "fast": len(chunks)}
        counts |= {"wrong-channels": 1, "nan": 1, "rate-change": 2}
        messages = collect(subscriber, counts)

    statuses = {m.stream_id: m.header for m in messages if m.kind == "status"}
    assert statuses["wrong-channels"]["code"] == "bad_payload"
    assert "expected [frames, 6]" in statuses["wrong-channels"]["message"]
    assert statuses["nan"]["code"] == "bad_payload" and "NaN" in statuses["nan"]["message"]
    assert statuses["rate-change"]["code"] == "bad_payload" and statuses["rate-change"]["seq"] == 1
    assert "differs from this stream's first chunk (50 Hz)" in statuses["rate-change"]["message"]
    for stream_id in ("good", "other", "fast"):
        preds = sorted(
            (m for m in messages if m.kind == "pred" and m.stream_id == stream_id), key=lambda m: m.header["seq"]
        )
        assert [m.header["seq"] for m in preds] == list(range(len(chunks)))
        if stream_id != "fast":  # the resampled stream's steps lag by the filter's 18 input frames
            assert [m.header["step0"] for m in preds] == [a for a, _ in chunks]
        scores = np.concatenate([m.scores for m in preds if m.scores is not None])
        np.testing.assert_allclose(scores, expected[stream_id], atol=2e-5)
