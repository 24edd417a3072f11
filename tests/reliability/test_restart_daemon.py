"""State survives a crash: kill -9 a daemon mid-stream, start it again, and the stream goes on as if never stopped."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import zmq
from daemon_helpers import speechlike

from streamer.client import Subscriber, wait_until_serving
from streamer.daemon.protocol import OutputMessage, encode_ingest
from streamer.pipeline import Pipeline

CHUNK = 1600  # 100 ms at 16 kHz


def answer(sub: Subscriber, stream_id: str, seq: int, timeout_s: float = 20) -> OutputMessage:
    """The pred or status answering message `seq` of `stream_id`."""
    for _ in range(int(timeout_s * 10)):
        message = sub.recv(timeout_ms=100)
        if message is not None and message.stream_id == stream_id and message.header.get("seq") == seq:
            return message
    raise AssertionError(f"no answer to seq {seq} of {stream_id} within {timeout_s} s")


def test_kill_9_then_restart_continues_exactly(daemon_factory, audio_model_path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "state.npz"
    sections = {"persistence": {"snapshot_path": str(snapshot), "snapshot_period_s": 2.0}}
    audio = speechlike(4.0, seed=4)[:, 0]
    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    first = daemon_factory(audio_model_path, sections)
    push = context.socket(zmq.PUSH)
    push.linger = 0
    push.connect(first.ingest)
    scores: dict[int, np.ndarray] = {}
    try:
        with Subscriber(first.publish, ["s"], context=context) as sub:
            wait_until_serving(first.ingest, first.publish)
            for seq in range(20):
                if seq == 16:  # wait for a fresh periodic snapshot (every 2 s): seqs 16-19 come just after it
                    before = snapshot.stat().st_mtime_ns if snapshot.exists() else None
                    for _ in range(100):
                        if snapshot.exists() and snapshot.stat().st_mtime_ns != before:
                            break
                        time.sleep(0.05)
                push.send_multipart(encode_ingest("s", seq, "data", chunks[seq], 16000))
                message = answer(sub, "s", seq)
                assert message.kind == "pred"
                scores[seq] = message.scores  # type: ignore[assignment]
        first.process.send_signal(signal.SIGKILL)  # long before the next snapshot
        first.wait()
        assert snapshot.exists()
        with np.load(snapshot) as data:  # the file a crash left behind is whole: renamed in place, never torn
            assert "header" in data.files

        # Same endpoints: the producer's PUSH socket, which stayed connected, reconnects by itself.
        second = daemon_factory(audio_model_path, sections, same_endpoints_as=first)
        with Subscriber(second.publish, ["s"], context=context) as sub:
            wait_until_serving(second.ingest, second.publish)
            push.send_multipart(encode_ingest("s", 20, "data", chunks[20], 16000))
            reply = answer(sub, "s", 20)
            assert reply.kind == "status" and reply.header["code"] == "resend", reply.header
            resume = reply.header["resend_from"]
            assert resume == 16  # what was lost (answered after the snapshot) is bounded and reported
            for seq in range(resume, len(chunks)):
                push.send_multipart(encode_ingest("s", seq, "data", chunks[seq], 16000))
                message = answer(sub, "s", seq)
                assert message.kind == "pred", message.header
                if seq in scores:  # answered before the crash too: the restored state gives the same bits
                    np.testing.assert_array_equal(message.scores, scores[seq])
                scores[seq] = message.scores  # type: ignore[assignment]
        assert "restored 1 stream(s)" in second.log
    finally:
        push.close(0)
        context.term()
    streamed = np.concatenate([scores[seq] for seq in range(len(chunks))])
    expected = Pipeline(audio_model_path).push({"x": audio[:, None]})["x"]
    np.testing.assert_allclose(streamed, expected[: len(streamed)], atol=2e-5)


def test_corrupt_or_foreign_snapshot_is_refused_and_the_daemon_starts_clean(
    daemon_factory, audio_model_path: Path, export_model, tmp_path: Path
) -> None:
    from daemon_helpers import LABELS, LOGMEL

    snapshot = tmp_path / "state.npz"
    sections = {"persistence": {"snapshot_path": str(snapshot), "snapshot_period_s": 60}}
    other = Pipeline(
        export_model(cell="gru", layers=1, features=40, hidden=8, classes=3, labels=LABELS, frontend=LOGMEL, seed=11)
    )
    other.push({"s": np.zeros(3200, np.int16)})
    other.snapshot(snapshot)
    foreign = daemon_factory(audio_model_path, sections)
    assert "not restoring state, starting clean" in foreign.log and "another model" in foreign.log
    assert foreign.stop() == 0  # the shutdown snapshot replaces the foreign file with this model's own

    snapshot.write_bytes(b"\x00garbage")
    corrupt = daemon_factory(audio_model_path, sections)
    assert "not restoring state, starting clean" in corrupt.log and "corrupt" in corrupt.log
    assert corrupt.stop() == 0
    Pipeline(audio_model_path).restore(snapshot)  # the shutdown snapshot is this model's again (raises if not)


def test_kill_9_under_load_clients_reconnect_and_losses_are_reported(
    daemon_factory, audio_model_path: Path, tmp_path
) -> None:
    """50 streams at real-time pace; kill -9; the same PUSH and SUB sockets, never reopened, carry on with the
    restarted daemon; every stream is told where to resume, within one snapshot period of where it was."""
    snapshot = tmp_path / "state.npz"
    sections = {"persistence": {"snapshot_path": str(snapshot), "snapshot_period_s": 1.0}}
    first = daemon_factory(audio_model_path, sections)
    streams = [f"load{i}" for i in range(50)]
    chunk = speechlike(0.1, seed=2)[:, 0]
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.linger = 0
    push.connect(first.ingest)
    next_seq = dict.fromkeys(streams, 0)
    answered: dict[str, int] = {}
    resend: dict[str, int] = {}
    resend_seen: dict[str, int] = {}

    def tick(sub: Subscriber) -> None:
        for stream_id in streams:
            seq = resend.pop(stream_id, next_seq[stream_id])
            push.send_multipart(encode_ingest(stream_id, seq, "data", chunk, 16000))
            next_seq[stream_id] = seq + 1
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            message = sub.recv(timeout_ms=10)
            if message is None:
                continue
            if message.kind == "pred":
                answered[message.stream_id] = message.header["seq"]
            elif message.header.get("code") == "resend":
                resend[message.stream_id] = message.header["resend_from"]
                resend_seen.setdefault(message.stream_id, message.header["resend_from"])

    try:
        with Subscriber(first.publish, streams, context=context) as sub:
            time.sleep(0.3)
            for _ in range(25):  # 2.5 s of load: at least one periodic snapshot
                tick(sub)
            before = dict(answered)
            first.process.send_signal(signal.SIGKILL)
            first.wait()
            second = daemon_factory(audio_model_path, sections, same_endpoints_as=first, wait=False)
            answered.clear()
            deadline = time.monotonic() + 60
            while len(answered) < len(streams) and time.monotonic() < deadline:
                tick(sub)  # the same sockets: ZeroMQ reconnects both by itself
            assert sorted(answered) == sorted(streams), f"{len(answered)} of {len(streams)} streams answered again"
        assert "restored 50 stream(s)" in second.log
        # Answered before the crash but not in the snapshot: what the producer had to send again.
        lost = {s: before[s] - (resend_seen[s] - 1) for s in resend_seen if s in before}
        assert all(0 <= n <= 15 for n in lost.values()), lost  # ≤ one 1 s period of 100 ms chunks, plus slack
    finally:
        push.close(0)
        context.term()
