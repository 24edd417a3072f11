"""Example producer: an IMU that sends ONE sample per message to a streamer daemon, with plain pyzmq.

This is what firmware or a small gateway does when it forwards each reading as it arrives (no buffering): the
wire protocol (CONTRACT.md §3) needs only a PUSH socket, a JSON header and 6 little-endian float32 values.
It replays a recording at its true rate (a .npy/.csv `[frames, 6]`, default: synthetic motion), and prints the
daemon's per-step predictions for its stream. Run a daemon first:

    streamer serve --config configs/sensor-watch.toml &
    python examples/imu_producer.py --stream watch-1 [--file recording.npy] [--rate-hz 50]

One sample per message is the lowest-latency pattern and the most expensive one: each message costs the
daemon a receive, a header parse, a frontend push, a batched model step and a publish. docs/sensors.md gives
the measured cost (`examples/bench_one_sample.py`); buffering 5–10 samples per message cuts it several-fold.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from pathlib import Path

import numpy as np
import zmq


def load_recording(path: Path | None, rate_hz: int) -> np.ndarray:
    """A recording [frames, 6] float32; without a file, 20 s of synthetic arm swings (gravity on az)."""
    if path is None:
        t = np.arange(20 * rate_hz) / rate_hz
        swing = np.sin(2 * np.pi * 0.5 * t)
        return np.stack([0.3 * swing, 0.1 * swing, 0.95 + 0 * t, 2 * np.cos(2 * np.pi * 0.5 * t), 0 * t, 0 * t], 1)
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    return np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)


def header(seq: int, rate_hz: int, channels: int, t_ns: int) -> bytes:
    """Frame 2 of an ingest message: seq counts this stream's messages from 0, t_ns is the capture time."""
    fields = {"v": 1, "seq": seq, "kind": "data", "dtype": "float32", "rate_hz": rate_hz, "channels": channels}
    return json.dumps({**fields, "t_ns": t_ns}, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest", default="tcp://127.0.0.1:5555")
    parser.add_argument("--publish", default="tcp://127.0.0.1:5556")
    parser.add_argument("--stream", default="imu-1")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--rate-hz", type=int, default=50)
    args = parser.parse_args()

    recording = load_recording(args.file, args.rate_hz)
    stream = args.stream.encode()
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.connect(args.ingest)
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"pred/" + stream + b"/")  # the trailing / keeps imu-1 from matching imu-10
    sub.setsockopt(zmq.SUBSCRIBE, b"status/" + stream + b"/")
    sub.connect(args.publish)
    time.sleep(0.3)  # let the subscription reach the daemon before the first answer

    pack = struct.Struct(f"<{recording.shape[1]}f").pack  # one frame, channel-interleaved, little-endian float32
    start_ns = time.time_ns()
    period_ns = 1_000_000_000 // args.rate_hz
    labels: list[str] = []
    try:
        for seq, sample in enumerate(recording):
            due_ns = start_ns + seq * period_ns
            time.sleep(max(0.0, (due_ns - time.time_ns()) / 1e9))
            push.send_multipart([stream, header(seq, args.rate_hz, len(sample), due_ns), pack(*sample)])
            while sub.poll(0):
                topic, head, *payload = sub.recv_multipart()
                answer = json.loads(head)
                if topic.startswith(b"status/"):
                    print(f"status {answer['code']}: {answer['message']}")
                    continue
                labels = answer["labels"]
                scores = np.frombuffer(payload[0], "<f4").reshape(answer["steps"], len(labels))
                if answer["step0"] % args.rate_hz == 0:  # print once a second
                    print(
                        f"step {answer['step0']}: {labels[int(scores[-1].argmax())]}  ({answer['latency_ms']:.1f} ms)"
                    )
        push.send_multipart([stream, json.dumps({"v": 1, "seq": len(recording), "kind": "end"}).encode()])
    finally:
        push.close(linger=1000)
        sub.close(linger=0)
        context.term()


if __name__ == "__main__":
    main()
