"""`streamer bench fuzz`: throws generated and mutated ingest messages at the wire decoder.

Every message must either decode or raise ProtocolError with a known status code: any other exception is a bug
(in the daemon it would be a crash or a silently dropped message). Memory is watched with tracemalloc: decoding never
allocates much more than the message itself (a payload is viewed, not copied), so a message can't make the daemon
allocate without bound. Rejections are counted per status code.
"""

from __future__ import annotations

import json
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from streamer.daemon import protocol
from streamer.errors import ProtocolError

STATUS_CODES = protocol.ANSWER_CODES | {"bad_stream_id"}
ALLOWED_OVERHEAD_BYTES = (
    1024 * 1024
)  # decoder bookkeeping beyond the message's own bytes (a 4 KiB JSON header parses into ~300 KiB at worst)


@dataclass
class FuzzReport:
    messages: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    peak_overhead_bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.crashes and self.peak_overhead_bytes <= ALLOWED_OVERHEAD_BYTES

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "messages": self.messages,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "crashes": self.crashes[:20],
            "peak_overhead_bytes": self.peak_overhead_bytes,
            "messages_per_s": round(self.messages / self.seconds) if self.seconds else None,
        }


def _valid(rng: random.Random) -> list[bytes]:
    kind = rng.choice(["data"] * 8 + ["reset", "end"])
    if kind != "data":
        return protocol.encode_ingest(f"s{rng.randrange(100)}", rng.randrange(1 << 20), kind)  # type: ignore[arg-type]
    channels = rng.choice([1, 1, 2, 6])
    frames = rng.choice([1, 160, 1600])
    dtype = rng.choice([np.int16, np.float32])
    samples = np.zeros((frames, channels), dtype)
    return protocol.encode_ingest(f"s{rng.randrange(100)}", rng.randrange(1 << 20), "data", samples, 16000)


_WEIRD_VALUES: list[object] = [
    None,
    True,
    -1,
    0,
    1,
    2**63,
    2**64,
    -(2**63),
    1.5,
    float("nan"),
    "1",
    "",
    "data",
    [],
    {},
    [1],
    {"a": 1},
    10**400,
    "x" * 300,
]


def _mutate_header(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    header = json.loads(frames[1])
    action = rng.randrange(4)
    key = rng.choice(["v", "seq", "kind", "dtype", "rate_hz", "channels", "t_ns", "extra"])
    if action == 0:
        header.pop(key, None)
    elif action in (1, 2):
        value = rng.choice(_WEIRD_VALUES)
        header[key] = value if not (isinstance(value, int) and value == 10**400) else "10" + "0" * 400
    else:
        header = rng.choice(_WEIRD_VALUES)
    text = json.dumps(header) if rng.random() < 0.9 else repr(header)
    return [frames[0], text.encode(), *frames[2:]]


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    mutable = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(3) if mutable else 2
        pos = rng.randrange(len(mutable) + 1)
        if op == 0 and pos < len(mutable):
            mutable[pos] = rng.randrange(256)
        elif op == 1:
            del mutable[pos : pos + rng.randrange(1, 8)]
        else:
            mutable[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    return bytes(mutable)


def _special(rng: random.Random) -> list[bytes]:
    """Hand-picked hostile shapes: nesting bombs, huge and odd payloads, NaN, bad ids, frame counts."""
    choice = rng.randrange(10)
    good = protocol.encode_ingest("s", 0, "data", np.zeros((4, 1), np.float32))
    if choice == 0:
        return [b"s", b"[" * 4000 + b"]" * 4000, good[2]]
    if choice == 1:
        return [b"s", b'{"v":1,"a":' * 300 + b"1" + b"}" * 300, good[2]]
    if choice == 2:
        return [good[0], good[1], bytes(protocol.IngestLimits().max_payload_bytes + 4)]
    if choice == 3:
        return [good[0], good[1], np.full(4, np.nan, np.float32).tobytes()]
    if choice == 4:
        return [good[0], good[1], np.array([np.inf, 1, 2, 3], np.float32).tobytes()]
    if choice == 5:
        return [rng.choice([b"", b"a" * 129, "é".encode(), b"a/b", b"\x00", b"*"]), good[1], good[2]]
    if choice == 6:
        return good[: rng.randrange(0, 2)]
    if choice == 7:
        return [*good, b"extra"]
    if choice == 8:
        return [good[0], b"\xff\xfe" + good[1], good[2]]
    return [good[0], good[1], rng.choice([good[2][:-1], b""])]


def generate(count: int, seed: int = 0) -> Iterator[list[bytes]]:
    rng = random.Random(seed)
    for _ in range(count):
        frames = _valid(rng)
        roll = rng.random()
        if roll < 0.15:
            yield frames
        elif roll < 0.5:
            yield _mutate_header(rng, frames)
        elif roll < 0.8:
            i = rng.randrange(len(frames))
            yield [*frames[:i], _mutate_bytes(rng, frames[i]), *frames[i + 1 :]]
        else:
            yield _special(rng)


def run_fuzz(count: int, seed: int = 0) -> FuzzReport:
    limits = protocol.IngestLimits()
    report = FuzzReport()
    start = time.perf_counter()
    tracemalloc.start()
    try:
        for frames in generate(count, seed):
            size = sum(len(f) for f in frames)
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            try:
                protocol.decode_ingest(frames, limits)
                report.accepted += 1
            except ProtocolError as exc:
                if exc.code not in STATUS_CODES:
                    report.crashes.append(f"unknown status code {exc.code!r} for {frames!r:.200}")
                report.rejected[exc.code] += 1
            except Exception as exc:  # the point of fuzzing: record anything else as a defect
                report.crashes.append(f"{type(exc).__name__}: {exc!s:.200} for {frames!r:.200}")
            _, peak = tracemalloc.get_traced_memory()
            report.peak_overhead_bytes = max(report.peak_overhead_bytes, peak - base - size)
            report.messages += 1
    finally:
        tracemalloc.stop()
    report.seconds = time.perf_counter() - start
    return report
