"""A subscriber that stops reading costs the daemon no memory beyond its bounded send queue."""

from __future__ import annotations

import time
from pathlib import Path

import zmq
from daemon_helpers import speechlike

from streamer.client import Subscriber
from streamer.daemon.protocol import encode_ingest


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_stalled_subscriber_does_not_raise_memory(daemon_factory, audio_model_path: Path) -> None:
    daemon = daemon_factory(audio_model_path, {"publish": {"send_hwm": 200}})
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stalled = context.socket(zmq.SUB)  # subscribes to everything, then never reads
    stalled.setsockopt(zmq.RCVHWM, 1)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(daemon.publish)
    push = context.socket(zmq.PUSH)
    push.connect(daemon.ingest)
    chunk = speechlike(1.0, seed=1)[:, 0]  # 1 s chunks: each pred carries 98 steps (~1.2 KB)
    try:
        with Subscriber(daemon.publish, ["s"], context=context) as live:
            time.sleep(0.5)

            def send(first: int, count: int, block: int = 50) -> None:
                """Blocks of chunks, each answered before the next: the daemon's own queues stay small."""
                for start in range(first, first + count, block):
                    for seq in range(start, start + block):
                        push.send_multipart(encode_ingest("s", seq, "data", chunk, 16000))
                    wait_for(start + block - 1)

            def wait_for(last: int) -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # the live subscriber keeps up and sees the last answer
                    message = live.recv(timeout_ms=100)
                    if message is not None and message.header.get("seq") == last:
                        return
                raise AssertionError(f"no answer to seq {last}")

            send(0, 1000)  # warm-up: the daemon's working set and allocator pools
            before_mb = rss_mb(daemon.process.pid)
            send(1000, 4000)  # ~5 MB of answers the stalled subscriber never reads
            after_mb = rss_mb(daemon.process.pid)
        assert after_mb - before_mb < 3.0, (before_mb, after_mb)
        assert "Traceback" not in daemon.log
    finally:
        stalled.close(0)
        push.close(0)
        context.term()
