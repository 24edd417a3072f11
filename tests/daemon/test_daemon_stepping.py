"""The loop's overlapped stepping, in process: a model call that fails answers every chunk of its batch with
`internal_error` and the daemon goes on; batches taken while a call runs are answered in order, exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from daemon_helpers import speechlike

from streamer import Pipeline
from streamer.daemon.config import load_config
from streamer.daemon.protocol import OutputMessage, decode_output, encode_ingest
from streamer.daemon.server import Daemon

STREAMS = [f"s{i}" for i in range(6)]
CHUNK = 1600  # 100 ms at 16 kHz


@pytest.fixture
def daemon(keyword_model: Path) -> Iterator[tuple[Daemon, zmq.Socket[bytes]]]:
    """A daemon bound to inproc endpoints (no loop running: the test drives it) and a subscriber to everything."""
    config = load_config(
        None,
        {
            "model": {"path": str(keyword_model)},
            "ingest": {"endpoint": f"inproc://stepping-in-{id(keyword_model)}"},
            "publish": {"endpoint": f"inproc://stepping-out-{id(keyword_model)}"},
            "metrics": {"enabled": False},
            "batch": {"max_batch": 4},
        },
    )
    served = Daemon(config)
    served.bind()
    sub = served.context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(served.endpoints["publish"])
    _handshake(served, sub)
    yield served, sub
    sub.close(linger=0)
    served.close()


def _handshake(daemon: Daemon, sub: zmq.Socket[bytes]) -> None:
    """Publish statuses until the subscriber sees one (the subscription has reached the PUB socket)."""
    deadline_s = time.monotonic() + 10
    while time.monotonic() < deadline_s:
        daemon.stepper.send_status(None, "hello", "handshake")
        if sub.poll(50):
            while sub.poll(50):
                sub.recv_multipart()
            return
    raise AssertionError("the subscription never reached the daemon")


def _received(sub: zmq.Socket[bytes]) -> list[OutputMessage]:
    messages = []
    while sub.poll(200):
        messages.append(decode_output(sub.recv_multipart()))
    return messages


def _feed(daemon: Daemon, audio: dict[str, np.ndarray], seq: int) -> None:
    for stream_id in STREAMS:
        chunk = audio[stream_id][seq * CHUNK : (seq + 1) * CHUNK]
        daemon.ingest.accept(encode_ingest(stream_id, seq, "data", chunk, 16000), time.monotonic())


def _take_all(daemon: Daemon) -> None:
    """What the loop does while batches are due: prepare the next one while the previous call runs."""
    while daemon.batcher.queued:
        if daemon._prepared is None:
            daemon._prepare(daemon.batcher.take(daemon.config.batch.max_batch))
        daemon._advance()
    daemon._flush()


def test_a_failing_model_call_answers_its_chunks_and_the_daemon_goes_on(
    daemon: tuple[Daemon, zmq.Socket[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, sub = daemon
    audio = {stream_id: speechlike(0.3, seed=i) for i, stream_id in enumerate(STREAMS)}

    def broken(*args: object) -> None:
        raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(served.pipeline.engine.session, "run", broken)
    _feed(served, audio, 0)
    _take_all(served)
    failed = _received(sub)
    assert sorted((m.stream_id, m.header["code"], m.header["seq"]) for m in failed) == [
        (stream_id, "internal_error", 0) for stream_id in STREAMS
    ]
    monkeypatch.undo()
    _feed(served, audio, 1)
    _take_all(served)
    answered = _received(sub)
    assert sorted((m.kind, m.stream_id, m.header["seq"]) for m in answered if m.kind == "pred") == [
        ("pred", stream_id, 1) for stream_id in STREAMS
    ]


def test_overlapped_batches_answer_every_chunk_in_order_and_exactly(daemon: tuple[Daemon, zmq.Socket[bytes]]) -> None:
    """Six streams in batches of four: batch k+1 is prepared while k's call runs; each stream equals its offline
    Pipeline run, and its answers arrive in seq order."""
    served, sub = daemon
    audio = {stream_id: speechlike(0.6, seed=10 + i) for i, stream_id in enumerate(STREAMS)}
    for seq in range(5):
        _feed(served, audio, seq)
    _take_all(served)
    preds = [m for m in _received(sub) if m.kind == "pred"]
    for stream_id in STREAMS:
        mine = [m for m in preds if m.stream_id == stream_id]
        assert [m.header["seq"] for m in mine] == list(range(5))
        streamed = np.concatenate([m.scores for m in mine if m.scores is not None])
        expected = Pipeline(served.pipeline.engine.spec.path).push({stream_id: audio[stream_id][: 5 * CHUNK]})
        np.testing.assert_allclose(streamed, expected[stream_id], atol=1e-5, rtol=0)
