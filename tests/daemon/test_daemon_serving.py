"""A real daemon process over loopback ZeroMQ gives each stream exactly its offline Pipeline answer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
import zmq
from daemon_helpers import DaemonProcess, collect, speechlike, stitch
from prometheus_client.parser import text_string_to_metric_families

from streamer import Pipeline
from streamer.client import Producer, Subscriber
from streamer.daemon.protocol import encode_ingest

ATOL = 2e-5  # batched vs single-stream onnxruntime calls differ in the last bits


def offline(model: Path, samples: np.ndarray, rate_hz: int = 16000) -> np.ndarray:
    return Pipeline(model).push({"x": samples}, rate_hz=rate_hz)["x"]


def answered(stream_ids: set[str], counts: dict[str, int]) -> Callable[[list], bool]:
    def done(messages: list) -> bool:
        got: dict[str, int] = {}
        for m in messages:
            if m.kind == "pred" and m.stream_id in stream_ids:
                got[m.stream_id] = got.get(m.stream_id, 0) + 1
        return all(got.get(s, 0) >= counts[s] for s in stream_ids)

    return done


def test_streamer_feed_of_a_wav_file_equals_offline_pipeline(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path, tmp_path: Path
) -> None:
    daemon = daemon_factory(keyword_model)
    samples = speechlike(1.5, seed=1)
    wav = tmp_path / "hello.wav"
    soundfile.write(wav, samples, 16000, subtype="PCM_16")
    with Subscriber(daemon.publish, ["hello"]) as subscriber:
        time.sleep(0.3)
        feed = subprocess.run(
            [sys.executable, "-m", "streamer.cli.main", "feed", str(wav), "--endpoint", daemon.ingest],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert feed.returncode == 0, feed.stderr
        assert "sent 15 chunks of 1 stream(s)" in feed.stdout
        messages = collect(subscriber, lambda ms: any(m.header.get("code") == "ended" for m in ms))
    np.testing.assert_allclose(stitch(messages, "hello"), offline(keyword_model, samples), atol=ATOL)


def test_feed_fast_with_flow_control_answers_every_chunk(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path, tmp_path: Path
) -> None:
    daemon = daemon_factory(keyword_model, {"streams": {"max_queued_per_stream": 8}})
    samples = speechlike(6.0, seed=2)
    wav = tmp_path / "long.flac"
    soundfile.write(wav, samples, 16000, subtype="PCM_16")
    with Subscriber(daemon.publish, ["long"]) as subscriber:
        time.sleep(0.3)
        feed = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamer.cli.main",
                "feed",
                str(wav),
                "--fast",
                "--chunk-ms",
                "20",
                "--endpoint",
                daemon.ingest,
                "--publish",
                daemon.publish,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert feed.returncode == 0, feed.stderr
        assert "300 answered" in feed.stdout  # 6 s / 20 ms, none refused by the 8-chunk queue (window 8)
        messages = collect(subscriber, lambda ms: any(m.header.get("code") == "ended" for m in ms))
    assert not [m for m in messages if m.kind == "status" and m.header["code"] == "overload"]
    np.testing.assert_allclose(stitch(messages, "long"), offline(keyword_model, samples), atol=ATOL)


def test_twenty_interleaved_streams_with_random_chunks_equal_their_offline_runs(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    daemon = daemon_factory(keyword_model)
    rng = np.random.default_rng(7)
    formats = [
        (16000, 1, np.int16),
        (16000, 2, np.int16),
        (16000, 1, np.float32),
        (48000, 1, np.int16),
        (8000, 1, np.int16),
    ]
    streams = {}
    for index in range(20):
        rate_hz, channels, dtype = formats[index % len(formats)]
        samples = speechlike(1.0 + rng.random(), rate_hz, seed=index, channels=channels)
        if dtype == np.float32:
            samples = (samples / 32768.0).astype(np.float32)
        cuts = np.sort(rng.choice(np.arange(1, len(samples)), size=rng.integers(3, 25), replace=False))
        streams[f"s{index}"] = (samples, rate_hz, np.split(samples, cuts))
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, list(streams)) as subscriber:
        time.sleep(0.3)
        pending = {sid: list(chunks) for sid, (_, _, chunks) in streams.items()}
        while any(pending.values()):
            for sid in rng.permutation(list(pending)):
                if pending[sid]:
                    producer.send(sid, pending[sid].pop(0), streams[sid][1])
        counts = {sid: len(chunks) for sid, (_, _, chunks) in streams.items()}
        messages = collect(subscriber, answered(set(streams), counts))
    assert not [m for m in messages if m.kind == "status" and m.header["code"] not in ("reset",)]
    for sid, (samples, rate_hz, _) in streams.items():
        np.testing.assert_allclose(
            stitch(messages, sid), offline(keyword_model, samples, rate_hz), atol=ATOL, err_msg=sid
        )


def test_gap_reset_end_and_eviction_each_get_a_status(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    daemon = daemon_factory(keyword_model, {"streams": {"idle_timeout_s": 1.0}})
    chunk = speechlike(0.1)
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, ["g"], kinds=["status"]) as subscriber:
        time.sleep(0.3)
        for seq, kind in [(0, "data"), (1, "data"), (4, "data"), (5, "reset"), (2, "data"), (6, "end")]:
            frames = encode_ingest("g", seq, kind, chunk if kind == "data" else None)  # type: ignore[arg-type]
            producer.socket.send_multipart(frames)
        producer.send("idle", chunk, 16000)
        messages = collect(subscriber, lambda ms: [m.header["code"] for m in ms][-1:] == ["ended"])
        codes = sorted((m.header["code"], m.header.get("seq")) for m in messages)
        # refusals are answered on receipt, reset/end when the stream's queue reaches them
        assert codes == [("bad_seq", 2), ("ended", 6), ("gap", 4), ("reset", 5)]
    with Subscriber(daemon.publish, ["idle"], kinds=["status"]) as subscriber:
        evicted = collect(subscriber, lambda ms: bool(ms), timeout_s=10)
        assert evicted[0].header["code"] == "evicted"


def test_metrics_endpoint_reports_traffic(daemon_factory: Callable[..., DaemonProcess], keyword_model: Path) -> None:
    daemon = daemon_factory(keyword_model)
    with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, ["m"]) as subscriber:
        time.sleep(0.3)
        for _ in range(12):
            producer.send("m", speechlike(0.1), 16000)
        producer.socket.send_multipart([b"m", b"not json", b""])
        collect(subscriber, lambda ms: sum(m.kind == "pred" for m in ms) == 12 and any(m.kind == "status" for m in ms))
    time.sleep(0.6)  # gauges are refreshed by the housekeeping tick
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("streamer_messages_total", (("outcome", "accepted"),))] >= 12  # plus the handshake
    assert samples[("streamer_messages_total", (("outcome", "bad_header"),))] == 1
    assert samples[("streamer_steps_total", ())] >= 12 * 8
    assert samples[("streamer_latency_seconds_count", ())] >= 12
    assert samples[("streamer_active_streams", ())] >= 1
    assert 0 < samples[("streamer_loop_cpu_seconds_total", ())] < 10  # the loop's CPU since serving began
    assert 0 < samples[("streamer_model_busy_seconds_total", ())] < 10  # wall time in the model calls
    for name in (
        "streamer_batch_streams_count",
        "streamer_publish_dropped_total",
        "streamer_evictions_total",
        "streamer_queued_chunks",
        "streamer_e2e_latency_seconds_count",
    ):
        assert (name, ()) in samples, name


@pytest.mark.parametrize("problem", ["config", "model", "missing model"])
def test_bad_config_exits_2_and_bad_model_exits_3(tmp_path: Path, keyword_model: Path, problem: str) -> None:
    config = tmp_path / "c.toml"
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx file")
    args = {
        "config": ["--config", str(config)],
        "model": ["--model", str(model), "--metrics", "off"],
        "missing model": ["--model", str(tmp_path / "absent.onnx"), "--metrics", "off"],
    }[problem]
    config.write_text("[batch]\nmax_delay_ms = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "streamer.cli.main", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == (2 if problem == "config" else 3), result.stderr
    assert ("batch.max_delay_ms" if problem == "config" else "onnx") in result.stderr


def test_a_stalled_subscriber_never_slows_the_daemon(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    """A subscriber that never reads loses messages (only its own); a reading one gets every answer, in order."""
    daemon = daemon_factory(keyword_model, {"publish": {"send_hwm": 1000}, "streams": {"max_queued_per_stream": 1000}})
    stalled = zmq.Context.instance().socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.RCVBUF, 4096)  # before connect: a small kernel buffer too
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(daemon.publish)
    streams = [f"busy{i}" for i in range(200)]
    total = 100 * len(streams)  # ~6 MB of answers: more than the stalled subscriber's queues and buffers hold
    try:
        with Producer(daemon.ingest) as producer, Subscriber(daemon.publish, streams, ["pred"]) as subscriber:
            time.sleep(0.3)
            chunk = speechlike(0.01)  # 160 samples: one step each, so answers come fast
            for _ in range(100):
                for stream_id in streams:
                    producer.send(stream_id, chunk, 16000)
            messages = collect(subscriber, lambda ms: len(ms) == total, timeout_s=120)
        for stream_id in streams[:5]:
            assert [m.header["seq"] for m in messages if m.stream_id == stream_id] == list(range(100))
        assert not subscriber.missed
        received = 0
        while stalled.poll(300):
            stalled.recv_multipart()
            received += 1
        assert received < total, received  # it really was left behind, and that cost the others nothing
    finally:
        stalled.close(linger=0)


def test_listen_json_prints_one_object_per_message(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    daemon = daemon_factory(keyword_model)
    listen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "listen",
            "--json",
            "--endpoint",
            daemon.publish,
            "--stream",
            "j",
            "--duration-s",
            "8",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # the listener's interpreter starts and subscribes
        with Producer(daemon.ingest) as producer:
            for _ in range(3):
                producer.send("j", speechlike(0.1), 16000)
            producer.end("j")
        out, _ = listen.communicate(timeout=30)
    finally:
        listen.kill()
    records = [json.loads(line) for line in out.splitlines()]
    preds = [r for r in records if r["kind"] == "pred"]
    assert [r["seq"] for r in preds] == [0, 1, 2]
    assert len(preds[1]["scores"]) == preds[1]["steps"] == 10 and len(preds[1]["scores"][0]) == 3
    assert records[-1]["kind"] == "status" and records[-1]["code"] == "ended"


def test_live_view_renders_streams_events_and_statuses() -> None:
    from rich.console import Console

    from streamer.daemon.protocol import decode_output, encode_event, encode_pred, encode_status
    from streamer.daemon.view import LiveView

    view = LiveView(missed={"a": 2})
    scores = np.array([[0.1, 0.8, 0.1]], np.float32)
    view.update(decode_output(encode_pred("a", 4, 40, scores, ["_background", "hey", "stop"], 3.5)))
    view.update(decode_output(encode_event("a", "hey", 0.93, 40, 0.41)))
    view.update(decode_output(encode_status("a", "gap", "expected seq 2, got 4")))
    view.update(decode_output(encode_pred("kitchen-mic-2", 0, 0, scores, ["_background", "hey_streamer", "x"], 3)))
    view.update(decode_output(encode_status("kitchen-mic-2", "overload", "behind real time")))
    console = Console(width=80, record=True)  # a plain terminal: every row on one line, nothing cut
    console.print(view.render())
    text = console.export_text()
    assert "hey 0.80" in text and "EVENT  a: hey" in text and "status a: gap" in text
    row = next(line for line in text.splitlines() if line.startswith(" a "))
    assert row.split() == ["a", "1", "3.5", "hey", "0.80", "1", "2", "gap"]  # preds, ms, top class, events, missed
    row = next(line for line in text.splitlines() if line.startswith(" kitchen-mic-2 "))
    assert row.split() == ["kitchen-mic-2", "1", "3.0", "hey_streamer", "0.80", "0", "0", "overload"]


@pytest.mark.parametrize("shards", [1, 2])
def test_feed_streams_synthetic_load_reports_its_latency(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path, shards: int
) -> None:
    """One daemon, or two shards with the streams spread by the clients (comma-separated endpoints)."""
    daemons = [daemon_factory(keyword_model) for _ in range(shards)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "feed",
            "--streams",
            "20",
            "--duration-s",
            "2",
            "--endpoint",
            ",".join(d.ingest for d in daemons),
            "--publish",
            ",".join(d.publish for d in daemons),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "20 streams: sent 400, answered 400, overload 0" in result.stdout


def test_sensor_pub_feed_is_ingested_through_a_sub_socket(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    """`ingest.subscribe`: the daemon connects to a device's PUB socket; the 3 frames are the same protocol."""
    context = zmq.Context.instance()
    feed = context.socket(zmq.PUB)
    port = feed.bind_to_random_port("tcp://127.0.0.1")
    try:
        daemon = daemon_factory(keyword_model, {"ingest": {"subscribe": [f"tcp://127.0.0.1:{port}"]}})
        samples = speechlike(1.0, seed=4)
        with Subscriber(daemon.publish, ["dev", "probe"]) as subscriber:
            time.sleep(0.3)
            for seq in range(100):  # until the daemon's SUB has joined (PUB drops before that)
                feed.send_multipart(encode_ingest("probe", seq, "data", speechlike(0.01), 16000))
                if subscriber.recv(timeout_ms=100) is not None:
                    break
            for seq, chunk in enumerate(np.array_split(samples, 10)):
                feed.send_multipart(encode_ingest("dev", seq, "data", chunk, 16000))
            messages = collect(subscriber, lambda ms: sum(m.kind == "pred" and m.stream_id == "dev" for m in ms) == 10)
        np.testing.assert_allclose(stitch(messages, "dev"), offline(keyword_model, samples), atol=ATOL)
    finally:
        feed.close(linger=0)
