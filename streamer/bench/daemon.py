"""`streamer bench daemon`: how many real-time streams a daemon holds (p99 <= 100 ms), against the naive baseline.

A load generator (one process) sends N streams of 16 kHz int16 audio in 100 ms chunks at real-time cadence,
phases spread evenly, each header stamped with the chunk's *scheduled* capture time `t_ns`; latency is receipt
of the `pred` minus that time, so a generator that falls behind counts against the daemon, never for it.
A level is held when every chunk is answered, no overload is reported and p99 latency <= 100 ms.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import zmq

from streamer.client import endpoint_list, shard_of, wait_until_serving
from streamer.daemon.protocol import ANSWER_CODES
from streamer.errors import ConfigError

P99_LIMIT_MS = 100.0
WARMUP_S = 2.0
NAIVE_DAEMON = Path(__file__).resolve().parents[2] / "benchmarks" / "naive_daemon.py"


STATUS_BUSY = re.compile(r"loop (\d+)% CPU, model (\d+)% busy")  # the daemon's STATUS line (server.py)


@dataclass(frozen=True)
class LoadSpec:
    """N streams of `rate_hz` int16 mono audio in `chunk_ms` chunks for `duration_s` (the first WARMUP_S unscored)."""

    streams: int
    duration_s: float = 8.0
    chunk_ms: float = 100.0
    rate_hz: int = 16000
    prefix: str = "load"


@dataclass
class LoadResult:
    streams: int
    sent: int
    answered: int
    overload: int
    latencies_ms: list[float] = field(repr=False)
    daemon_ms: list[float] = field(repr=False)  # the daemon's own share: receipt to publish (pred latency_ms)
    send_lag_ms: list[float] = field(repr=False)  # how late the generator sent each chunk
    daemon_cpu_s: float = 0.0
    generator_cpu_s: float = 0.0
    wall_s: float = 0.0
    loop_busy: float | None = None  # the daemon's STATUS line (busiest ~2 s of the level): loop thread CPU share
    model_busy: float | None = None  # ... and the compute thread's share of time in model calls

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.inf

    @property
    def held(self) -> bool:
        return self.answered == self.sent and self.overload == 0 and self.percentile(99) <= P99_LIMIT_MS

    def summary(self) -> str:
        return (
            f"{self.streams} streams: sent {self.sent}, answered {self.answered}, overload {self.overload}, "
            f"latency p50 {self.percentile(50):.1f} p99 {self.percentile(99):.1f} max "
            f"{max(self.latencies_ms, default=math.inf):.1f} ms (in daemon p99 {_p99(self.daemon_ms):.1f}, "
            f"send lag p99 {_p99(self.send_lag_ms):.1f}), daemon CPU {self.daemon_cpu_s / self.wall_s:.0%}"
            f", generator CPU {self.generator_cpu_s / self.wall_s:.0%}"
            + (
                f", loop {self.loop_busy:.0%} CPU, model {self.model_busy:.0%} busy"
                if self.loop_busy is not None and self.model_busy is not None
                else ""
            )
            + f" -> {'held' if self.held else 'NOT held'}"
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("latencies_ms", "daemon_ms", "send_lag_ms"):
            del data[key]
        data["daemon_p99_ms"] = round(float(np.percentile(self.daemon_ms, 99)), 2) if self.daemon_ms else None
        data["send_lag_p99_ms"] = round(float(np.percentile(self.send_lag_ms, 99)), 2) if self.send_lag_ms else None
        data.update({f"p{q}": round(self.percentile(q), 2) for q in (50, 90, 99, 99.9)}, held=self.held)
        return data


def _p99(values: list[float]) -> float:
    return float(np.percentile(values, 99)) if values else math.inf


def _test_signal(rate_hz: int, seconds: float) -> np.ndarray:
    """Speech-like test audio: noise with a moving tone, int16 (content only matters for detection paths)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    tone = 0.3 * np.sin(2 * np.pi * (300 + 200 * np.sin(2 * np.pi * 0.5 * t)) * t)
    return np.clip((tone + 0.05 * rng.standard_normal(len(t))) * 32767, -32768, 32767).astype(np.int16)


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(spec: LoadSpec, ingest: str, publish: str, daemon_pid: int | None = None) -> LoadResult:
    """Send the load, collect answers; returns per-chunk latencies of the scored part."""
    frames_per_chunk = round(spec.rate_hz * spec.chunk_ms / 1000)
    audio = _test_signal(spec.rate_hz, 10.0)
    chunks = [
        audio[i : i + frames_per_chunk].tobytes() for i in range(0, len(audio) - frames_per_chunk, frames_per_chunk)
    ]
    ids = [f"{spec.prefix}{i}".encode() for i in range(spec.streams)]
    period_ns = int(spec.chunk_ms * 1e6)
    rounds = max(1, int(spec.duration_s * 1000 / spec.chunk_ms))
    total = rounds * spec.streams
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pushes = []
    for address in endpoint_list(ingest):  # several: shards, each stream to its own (client.shard_of)
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(address)
        pushes.append(push)
    sends = [pushes[shard_of(i.decode(), len(pushes))].send for i in ids]
    more = int(zmq.SNDMORE)
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    for kind in (b"pred/", b"status/"):
        sub.setsockopt(zmq.SUBSCRIBE, kind + spec.prefix.encode())
    for address in endpoint_list(publish):
        sub.connect(address)
    time.sleep(0.3)  # the subscription must reach the daemon before the first answer
    latencies: list[float] = []
    daemon_ms: list[float] = []
    send_lag_ms: list[float] = []
    answered = overload = 0
    scored_from_ns = 0

    def drain(timeout_ms: int) -> None:
        nonlocal answered, overload
        if not sub.poll(timeout_ms):
            return
        while True:
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            now_ns = time.time_ns()
            header = orjson.loads(frames[1])  # the generator shares the daemon's two cores: keep it cheap
            if frames[0].startswith(b"pred/"):
                answered += 1
                t_ns = header.get("t_ns", 0)
                if t_ns >= scored_from_ns:
                    latencies.append((now_ns - t_ns) / 1e6)
                    daemon_ms.append(header["latency_ms"])
            elif header.get("code") in ANSWER_CODES and "seq" in header:  # answers one message instead of a pred
                answered += 1
                overload += header["code"] == "overload"
            elif header.get("code") == "overload":  # a lag report: answers nothing
                overload += 1

    daemon_cpu0 = _cpu_s(daemon_pid) if daemon_pid else 0.0
    own_cpu0 = time.process_time()
    start_ns = time.time_ns() + 50_000_000
    scored_from_ns = start_ns + int(WARMUP_S * 1e9)
    sent = 0
    while sent < total:
        now_ns = time.time_ns()
        while sent < total:
            round_index, stream_index = divmod(sent, spec.streams)
            due_ns = start_ns + round_index * period_ns + stream_index * period_ns // spec.streams
            if due_ns > now_ns:
                break
            header = b'{"v":1,"seq":%d,"kind":"data","dtype":"int16","rate_hz":%d,"channels":1,"t_ns":%d}' % (
                round_index,
                spec.rate_hz,
                due_ns,
            )
            # One send per frame with int flags: pyzmq's send_multipart costs ~3 µs more per message.
            send = sends[stream_index]
            send(ids[stream_index], more)
            send(header, more)
            send(chunks[(round_index + stream_index) % len(chunks)], 0)
            sent += 1
            if due_ns >= scored_from_ns:
                send_lag_ms.append((time.time_ns() - due_ns) / 1e6)
        if sent < total:
            round_index, stream_index = divmod(sent, spec.streams)
            due_ns = start_ns + round_index * period_ns + stream_index * period_ns // spec.streams
            # Wake at most once per millisecond (sending what is due in bursts) rather than spinning: on a
            # 2-core machine a spinning generator takes the CPU the daemon under test needs.
            drain(max(1, (due_ns - time.time_ns()) // 1_000_000))
    deadline_s = time.monotonic() + 3.0
    while answered < sent and time.monotonic() < deadline_s:
        drain(50)
    wall_s = (time.time_ns() - start_ns) / 1e9
    for stream_id, send in zip(ids, sends, strict=True):
        send(stream_id, more)
        send(b'{"v":1,"seq":%d,"kind":"end"}' % rounds, 0)
    for push in pushes:
        push.close(linger=1000)
    sub.close(linger=0)
    return LoadResult(
        spec.streams,
        sent,
        answered,
        overload,
        latencies,
        daemon_ms,
        send_lag_ms,
        (_cpu_s(daemon_pid) - daemon_cpu0) if daemon_pid else 0.0,
        time.process_time() - own_cpu0,
        wall_s,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DaemonProcess:
    """A daemon (ours or the naive one) in a child process on free loopback ports, its sd_notify messages read
    from a socket of ours (`NOTIFY_SOCKET`): its STATUS lines say how busy its loop and model calls are."""

    def __init__(self, command: list[str]) -> None:
        self.ingest = f"tcp://127.0.0.1:{_free_port()}"
        self.publish = f"tcp://127.0.0.1:{_free_port()}"
        argv = [arg.replace("{ingest}", self.ingest).replace("{publish}", self.publish) for arg in command]
        self.command = argv
        self._notify_dir = tempfile.mkdtemp(prefix="streamer-bench-")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(os.path.join(self._notify_dir, "notify"))
        self._notify.setblocking(False)
        env = {**os.environ, "NOTIFY_SOCKET": self._notify.getsockname()}
        # The daemon's log goes to a file: an unread pipe would block it once full.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def busy(self) -> tuple[float, float] | None:
        """The highest loop CPU and model-busy shares in the STATUS lines since the last call (None: none came)."""
        loops, models = [], []
        while True:
            try:
                datagram = self._notify.recv(4096).decode(errors="replace")
            except BlockingIOError:
                break
            found = STATUS_BUSY.search(datagram)
            if found:
                loops.append(int(found[1]) / 100)
                models.append(int(found[2]) / 100)
        return (max(loops), max(models)) if loops else None

    def measure(self, spec: LoadSpec) -> LoadResult:
        """One load level against this daemon, with its busy shares over the level."""
        self.busy()  # forget what came before this level
        result = run_load(spec, self.ingest, self.publish, self.process.pid)
        busy = self.busy()
        if busy is not None:
            result.loop_busy, result.model_busy = busy
        return result

    def __enter__(self) -> DaemonProcess:
        try:
            wait_until_serving(self.ingest, self.publish, timeout_s=60.0)
        except ConfigError:
            self.__exit__()
            self._log.seek(0)
            output = self._log.read()[-2000:].decode(errors="replace")
            raise ConfigError(f"daemon {' '.join(self.command)} did not serve: {output}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        self._notify.close()
        shutil.rmtree(self._notify_dir, ignore_errors=True)


def ours(model: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamer.cli.main",
        "serve",
        "--model",
        str(model),
        "--ingest",
        "{ingest}",
        "--publish",
        "{publish}",
        "--metrics",
        "off",
    ]


def naive(model: Path) -> list[str]:
    return [sys.executable, str(NAIVE_DAEMON), "--model", str(model), "--ingest", "{ingest}", "--publish", "{publish}"]


def find_capacity(command: list[str], start: int, duration_s: float, log: list[str]) -> tuple[int, list[LoadResult]]:
    """Double the stream count until a level fails, then bisect twice; returns the largest held level."""
    results: list[LoadResult] = []
    held, failed = 0, 0
    level = start
    with DaemonProcess(command) as daemon:
        for attempt in range(12):
            result = daemon.measure(LoadSpec(level, duration_s, prefix=f"L{attempt}x"))
            results.append(result)
            log.append(result.summary())
            print("  " + result.summary(), flush=True)
            if result.held:
                held = level
            else:
                failed = level
            if failed and held and (failed - held) <= max(25, held // 8):
                break
            if failed and not held and level <= start // 4:
                break
            level = level * 2 if not failed else (held + failed) // 2 if held else level // 2
    return held, results


def _naive_class() -> type:
    spec = importlib.util.spec_from_file_location("naive_daemon", NAIVE_DAEMON)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load the baseline {NAIVE_DAEMON}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    naive_class: type = module.NaiveDaemon
    return naive_class


def cpu_per_message(model: Path, streams: int = 1000, rounds: int = 6) -> dict[str, float]:
    """CPU time (this process: the loop and the engine's compute thread) per 100 ms chunk, in-process, sockets
    to nowhere: ours at two batch sizes, naive.

    Independent of other processes' load, unlike the real-time levels: a core's worth of it is 1e5 µs per
    100 ms, so `1e5 / µs per chunk` is how many real-time streams one dedicated core could carry.
    """
    from streamer.daemon.config import load_config
    from streamer.daemon.server import Daemon

    audio = _test_signal(16000, 10.0)
    chunks = [audio[i : i + 1600].tobytes() for i in range(0, len(audio) - 1600, 1600)]

    def frames(stream: int, seq: int) -> list[bytes]:
        header = b'{"v":1,"seq":%d,"kind":"data","dtype":"int16","rate_hz":16000,"channels":1,"t_ns":%d}'
        return [b"cpu%d" % stream, header % (seq, time.time_ns()), chunks[(seq + stream) % len(chunks)]]

    result: dict[str, float] = {}
    for batch in (50, 512):
        config = load_config(
            None,
            {
                "model": {"path": str(model)},
                "ingest": {"endpoint": "inproc://cpu-in"},
                "publish": {"endpoint": "inproc://cpu-out"},
                "metrics": {"enabled": False},
                "batch": {"max_batch": batch},
            },
        )
        daemon = Daemon(config)
        daemon.bind()
        try:
            spent = 0.0
            for seq in range(rounds + 2):
                started = time.process_time()
                for stream in range(streams):
                    daemon.ingest.accept(frames(stream, seq), time.monotonic())
                while daemon.batcher.queued:
                    daemon.stepper.step(daemon.batcher.take(batch))
                if seq >= 2:
                    spent += time.process_time() - started
            result[f"daemon_us_batch_{batch}"] = round(spent / (rounds * streams) * 1e6, 1)
        finally:
            daemon.close()
    naive = _naive_class()(str(model))
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.bind("inproc://naive-out")
    spent = 0.0
    naive_rounds = max(2, rounds // 2)
    for seq in range(naive_rounds + 1):
        started = time.process_time()
        for stream in range(streams):
            reply = naive.handle(frames(stream, seq))
            if reply is not None:
                pub.send_multipart(reply)
        if seq >= 1:
            spent += time.process_time() - started
    pub.close(linger=0)
    context.term()
    result["naive_us"] = round(spent / (naive_rounds * streams) * 1e6, 1)
    result["ratio_at_batch_50"] = round(result["naive_us"] / result["daemon_us_batch_50"], 2)
    return result


def run_daemon_bench(
    model: Path, *, streams: int | None, duration_s: float, baseline: bool, as_json: bool
) -> dict[str, object]:
    if not model.exists():
        raise ConfigError(f"bench daemon: model {model} not found (train it, or pass --model)")
    log: list[str] = []
    report: dict[str, object] = {"model": str(model), "duration_s_per_level": duration_s, "cpus": os.cpu_count()}
    if streams is not None:
        with DaemonProcess(ours(model)) as daemon:
            result = daemon.measure(LoadSpec(streams, duration_s))
        print(result.summary())
        report["single"] = result.to_json()
        return report
    cpu = cpu_per_message(model)
    report["cpu_per_chunk_us"] = cpu
    print(
        "CPU per 100 ms chunk (process CPU time, all threads, in-process, 1000 streams): daemon "
        f"{cpu['daemon_us_batch_50']:.0f} us "
        f"at batches of 50, {cpu['daemon_us_batch_512']:.0f} us at 512; naive {cpu['naive_us']:.0f} us "
        f"(x{cpu['ratio_at_batch_50']:.1f}); one dedicated core: ~{1e5 / cpu['daemon_us_batch_50']:.0f} vs "
        f"~{1e5 / cpu['naive_us']:.0f} streams",
        flush=True,
    )
    print(f"streamer daemon ({model}):", flush=True)
    capacity, levels = find_capacity(ours(model), 250, duration_s, log)
    report["daemon"] = {"streams_held": capacity, "levels": [r.to_json() for r in levels]}
    if capacity:
        with DaemonProcess(ours(model)) as daemon:
            half = daemon.measure(LoadSpec(capacity // 2, duration_s * 2, prefix="half"))
        print(f"  at half ({capacity // 2} streams): " + half.summary(), flush=True)
        report["daemon"]["half"] = half.to_json()  # type: ignore[index]
    if baseline:
        print("naive baseline (one model call per message):", flush=True)
        base_capacity, base_levels = find_capacity(naive(model), 50, duration_s, log)
        report["baseline"] = {"streams_held": base_capacity, "levels": [r.to_json() for r in base_levels]}
        if base_capacity:
            report["speedup"] = round(capacity / base_capacity, 2)
    print(
        f"held in real time (p99 <= {P99_LIMIT_MS:g} ms): daemon {capacity} streams"
        + (
            f", baseline {report['baseline']['streams_held']}, x{report.get('speedup')}"  # type: ignore[index]
            if baseline
            else ""
        ),
        flush=True,
    )
    if as_json:
        print(json.dumps(report))
    return report
