"""What one sample per message costs: messages/s and samples/s a running daemon sustains, 1-sample chunks against
10- and 50-sample chunks of the same sensor streams (the baseline, same daemon, same run).

    python examples/bench_one_sample.py [--model models/watch/model.onnx] [--streams 64] [--duration-s 6] [--json]

A daemon (`streamer serve`, metrics off) runs in a child process on free loopback ports. One load process sends
`--streams` streams of 6-channel float32 frames, each stream keeping at most `--window` messages unanswered
(credit-based, so the daemon's queues never overflow and nothing is refused), as fast as the answers come back.
Throughput is counted over the last `duration_s - warmup` seconds. Saturation: the answered rate is what the
daemon (or the generator: both CPU shares are printed) can do. A paced level then checks latency at a real
device rate: `--paced-devices` streams at 50 Hz, one sample per message, p50/p99 from capture time to answer.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import zmq

from streamer.bench.daemon import DaemonProcess, ours
from streamer.daemon.protocol import ANSWER_CODES

WARMUP_S = 1.5


@dataclass
class Level:
    """One measured load level."""

    frames_per_message: int
    streams: int
    messages_per_s: float
    samples_per_s: float
    daemon_cpu: float
    generator_cpu: float
    answered: int
    refused: int
    p50_ms: float | None = None
    p99_ms: float | None = None


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sockets(daemon: DaemonProcess, prefix: bytes) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    push.connect(daemon.ingest)
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    for kind in (b"pred/", b"status/"):
        sub.setsockopt(zmq.SUBSCRIBE, kind + prefix)
    sub.connect(daemon.publish)
    time.sleep(0.3)
    return push, sub


def _header(seq: int, t_ns: int) -> bytes:
    return b'{"v":1,"seq":%d,"kind":"data","dtype":"float32","rate_hz":50,"channels":6,"t_ns":%d}' % (seq, t_ns)


def saturate(daemon: DaemonProcess, frames: int, streams: int, window: int, duration_s: float) -> Level:
    """Send as fast as answers allow; count answers per second after the warm-up."""
    prefix = f"sat{frames}-".encode()
    push, sub = _sockets(daemon, prefix)
    ids = [prefix + str(i).encode() for i in range(streams)]
    payload = np.random.default_rng(0).normal(0, 0.5, size=(frames, 6)).astype("<f4").tobytes()
    seq = [0] * streams
    unanswered = [0] * streams
    index = {stream_id: i for i, stream_id in enumerate(ids)}
    answered = refused = counted = 0
    start_s = time.monotonic()
    measure_from_s = start_s + WARMUP_S
    cpu0 = daemon_cpu0 = 0.0
    measuring = False
    while (now_s := time.monotonic()) < start_s + duration_s:
        if not measuring and now_s >= measure_from_s:
            measuring, counted = True, 0
            cpu0, daemon_cpu0 = time.process_time(), _cpu_s(daemon.process.pid)
        for i, stream_id in enumerate(ids):
            while unanswered[i] < window:
                push.send_multipart([stream_id, _header(seq[i], 0), payload], copy=False)
                seq[i] += 1
                unanswered[i] += 1
        if sub.poll(100):
            while True:
                try:
                    topic, head, *_ = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                stream_id = topic.split(b"/")[1]
                if topic.startswith(b"status/") and json.loads(head).get("code") not in ANSWER_CODES:
                    continue
                refused += topic.startswith(b"status/")
                unanswered[index[stream_id]] -= 1
                answered += 1
                counted += 1
    wall_s = time.monotonic() - measure_from_s
    level = Level(
        frames,
        streams,
        counted / wall_s,
        counted * frames / wall_s,
        (_cpu_s(daemon.process.pid) - daemon_cpu0) / wall_s,
        (time.process_time() - cpu0) / wall_s,
        answered,
        refused,
    )
    _finish(push, sub, ids, seq)
    return level


def paced(daemon: DaemonProcess, devices: int, duration_s: float) -> Level:
    """`devices` streams at 50 Hz, one sample per message, phases spread; latency = answer time - capture time."""
    prefix = b"dev-"
    push, sub = _sockets(daemon, prefix)
    ids = [prefix + str(i).encode() for i in range(devices)]
    payload = np.zeros((1, 6), "<f4").tobytes()
    period_ns = 20_000_000
    rounds = int(duration_s * 50)
    start_ns = time.time_ns() + 50_000_000
    scored_ns = start_ns + int(WARMUP_S * 1e9)
    latencies: list[float] = []
    sent = answered = refused = 0
    total = rounds * devices
    cpu0, daemon_cpu0 = time.process_time(), _cpu_s(daemon.process.pid)
    while sent < total or (answered < total and time.time_ns() < start_ns + rounds * period_ns + 3e9):
        while sent < total:
            round_index, device = divmod(sent, devices)
            due_ns = start_ns + round_index * period_ns + device * period_ns // devices
            if due_ns > time.time_ns():
                break
            push.send_multipart([ids[device], _header(round_index, due_ns), payload], copy=False)
            sent += 1
        if sub.poll(1):
            while True:
                try:
                    topic, head, *_ = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                header = json.loads(head)
                if topic.startswith(b"pred/"):
                    answered += 1
                    if header.get("t_ns", 0) >= scored_ns:
                        latencies.append((time.time_ns() - header["t_ns"]) / 1e6)
                elif header.get("code") in ANSWER_CODES:
                    answered += 1
                    refused += 1
    wall_s = (time.time_ns() - start_ns) / 1e9
    level = Level(
        1,
        devices,
        answered / wall_s,
        answered / wall_s,
        (_cpu_s(daemon.process.pid) - daemon_cpu0) / wall_s,
        (time.process_time() - cpu0) / wall_s,
        answered,
        refused,
        float(np.percentile(latencies, 50)) if latencies else None,
        float(np.percentile(latencies, 99)) if latencies else None,
    )
    _finish(push, sub, ids, [rounds] * devices)
    return level


def _finish(push: zmq.Socket[bytes], sub: zmq.Socket[bytes], ids: list[bytes], seq: list[int]) -> None:
    for stream_id, next_seq in zip(ids, seq, strict=True):
        push.send_multipart([stream_id, b'{"v":1,"seq":%d,"kind":"end"}' % next_seq])
    push.close(linger=1000)
    sub.close(linger=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/watch/model.onnx"))
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--window", type=int, default=4, help="unanswered messages allowed per stream")
    parser.add_argument("--duration-s", type=float, default=6.0)
    parser.add_argument("--paced-devices", type=int, default=0, help="also run this many 50 Hz devices")
    parser.add_argument("--frames", type=int, nargs="*", default=[1, 10, 50], help="samples per message to saturate")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    levels = []
    with DaemonProcess(ours(args.model)) as daemon:
        for frames in args.frames:
            levels.append(saturate(daemon, frames, args.streams, args.window, args.duration_s))
            if not args.json:
                print(_line(levels[-1]), flush=True)
        if args.paced_devices:
            levels.append(paced(daemon, args.paced_devices, args.duration_s))
            if not args.json:
                print(_line(levels[-1]), flush=True)
    if args.json:
        print(json.dumps([asdict(level) for level in levels], indent=2))


def _line(level: Level) -> str:
    latency = "" if level.p99_ms is None else f", latency p50 {level.p50_ms:.1f} p99 {level.p99_ms:.1f} ms"
    return (
        f"{level.frames_per_message:>2} sample(s)/message, {level.streams} streams: "
        f"{level.messages_per_s:,.0f} messages/s = {level.samples_per_s:,.0f} samples/s "
        f"(≈ {level.samples_per_s / 50:,.0f} devices at 50 Hz), daemon CPU {level.daemon_cpu:.0%}, "
        f"generator CPU {level.generator_cpu:.0%}, refused {level.refused}{latency}"
    )


if __name__ == "__main__":
    main()
