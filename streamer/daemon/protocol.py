"""Wire protocol v1 (CONTRACT.md §3, docs/protocol.md): pure encode/decode functions, no sockets.

Every decoding failure raises `ProtocolError` whose `code` is the status code sent back to the producer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from streamer.errors import ProtocolError

VERSION = 1
STREAM_ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"
_STREAM_ID_RE = re.compile(STREAM_ID_PATTERN.encode("ascii"))
DAEMON_TOPIC_ID = "*"
"""Pseudo stream id of the daemon-wide status topic `status/*/` (`*` can never be a real stream id)."""

Kind = Literal["data", "reset", "end"]
DTYPES: dict[str, np.dtype[Any]] = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
KINDS: tuple[str, ...] = ("data", "reset", "end")
ANSWER_CODES = frozenset(
    {
        "bad_frames",
        "bad_header",
        "bad_version",
        "bad_payload",
        "bad_seq",
        "overload",
        "capacity",
        "shutdown",
        "internal_error",
    }
)
"""Status codes that answer a data message in place of its `pred` (`gap` and `reset` only inform)."""
MAX_RATE_HZ = 1_000_000
MAX_CHANNELS = 1024


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """What the decoder accepts beyond the protocol's own rules."""

    max_payload_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class IngestMessage:
    """One decoded ingest message. `samples` is `[frames, channels]` for data, None for reset/end."""

    stream_id: str
    seq: int
    kind: Kind
    rate_hz: int
    channels: int
    dtype: str
    t_ns: int | None
    samples: np.ndarray | None


@dataclass(frozen=True, slots=True)
class OutputMessage:
    """One decoded output message (pred, event or status) as a subscriber sees it."""

    kind: Literal["pred", "event", "status"]
    stream_id: str
    header: dict[str, Any]
    scores: np.ndarray | None = None


def decode_stream_id(frame: bytes) -> str:
    """The stream id of frame 1, or ProtocolError `bad_stream_id`."""
    if _STREAM_ID_RE.fullmatch(frame) is None:
        shown = frame[:40].decode("utf-8", "replace")
        raise ProtocolError(
            "bad_stream_id",
            f"stream id {shown!r} ({len(frame)} bytes) is invalid: expected 1-128 bytes of [A-Za-z0-9._:-]",
        )
    return frame.decode("ascii")


def _int_field(header: dict[str, Any], key: str, low: int, high: int, required: bool = True) -> int | None:
    value = header.get(key)
    if value is None and not required:
        return None
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError("bad_header", f"header field {key!r} is {value!r}: expected an integer in [{low}, {high}]")
    return value


def _parse_header(frame: bytes, limits: IngestLimits) -> dict[str, Any]:
    if len(frame) > limits.max_header_bytes:
        raise ProtocolError("bad_header", f"header is {len(frame)} bytes: at most {limits.max_header_bytes}")
    try:  # orjson: ~6x faster than json here, strict RFC 8259 (no NaN literals, UTF-8 only, 64-bit integers)
        header = orjson.loads(frame)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_header", f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_header", f"header is a JSON {type(header).__name__}: expected an object")
    if header.get("v") != VERSION or type(header.get("v")) is not int:
        raise ProtocolError("bad_version", f"header field 'v' is {header.get('v')!r}: this daemon speaks v={VERSION}")
    return header


def decode_ingest(frames: list[bytes], limits: IngestLimits, stream_id: str | None = None) -> IngestMessage:
    """Decode a 2- or 3-frame ingest message; raises ProtocolError (code = status code) on anything invalid.
    `stream_id`: frame 1 already checked by `decode_stream_id` (the daemon checks it first to answer errors)."""
    if not 2 <= len(frames) <= 3:
        raise ProtocolError("bad_frames", f"message has {len(frames)} frames: expected 3 (data) or 2 (reset/end)")
    if stream_id is None:
        stream_id = decode_stream_id(frames[0])
    header = _parse_header(frames[1], limits)
    seq = _int_field(header, "seq", 0, 2**63 - 1)
    kind = header.get("kind")
    if kind not in KINDS:
        raise ProtocolError("bad_header", f"header field 'kind' is {kind!r}: expected one of {list(KINDS)}")
    t_ns = _int_field(header, "t_ns", 0, 2**63 - 1, required=False)
    assert seq is not None
    if kind != "data":
        if len(frames) != 2:
            raise ProtocolError("bad_frames", f"a {kind!r} message has {len(frames)} frames: expected 2 (no payload)")
        return IngestMessage(stream_id, seq, kind, 0, 0, "", t_ns, None)
    if len(frames) != 3:
        raise ProtocolError("bad_frames", "a 'data' message has 2 frames: expected 3 (id, header, payload)")
    dtype_name = header.get("dtype")
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:  # a JSON list/object is unhashable
        raise ProtocolError("bad_header", f"header field 'dtype' is {dtype_name!r}: expected one of {list(DTYPES)}")
    rate_hz = _int_field(header, "rate_hz", 1, MAX_RATE_HZ)
    channels = _int_field(header, "channels", 1, MAX_CHANNELS)
    assert rate_hz is not None and channels is not None
    samples = decode_payload(frames[2], dtype_name, channels, limits)
    return IngestMessage(stream_id, seq, "data", rate_hz, channels, dtype_name, t_ns, samples)


def decode_payload(payload: bytes, dtype_name: str, channels: int, limits: IngestLimits) -> np.ndarray:
    """Little-endian interleaved samples → `[frames, channels]` array (a read-only view when possible)."""
    if len(payload) > limits.max_payload_bytes:
        raise ProtocolError(
            "bad_payload",
            f"payload is {len(payload)} bytes: at most {limits.max_payload_bytes} (ingest.max_payload_bytes)",
        )
    dtype = DTYPES[dtype_name]
    frame_bytes = dtype.itemsize * channels
    if len(payload) % frame_bytes:
        raise ProtocolError(
            "bad_payload",
            f"payload is {len(payload)} bytes: expected a multiple of {frame_bytes} "
            f"({dtype_name} x {channels} channels)",
        )
    samples = np.frombuffer(payload, dtype=dtype).reshape(-1, channels)
    if dtype_name == "float32" and not np.isfinite(samples).all():
        raise ProtocolError("bad_payload", "payload has NaN or infinite samples: expected finite float32")
    return samples


def encode_ingest(
    stream_id: str,
    seq: int,
    kind: Kind = "data",
    samples: np.ndarray | None = None,
    rate_hz: int = 16000,
    t_ns: int | None = None,
) -> list[bytes]:
    """Frames of one ingest message; `samples` int16 or float32 `[frames]` or `[frames, channels]`."""
    decode_stream_id(stream_id.encode("utf-8"))
    header: dict[str, Any] = {"v": VERSION, "seq": seq, "kind": kind}
    if t_ns is not None:
        header["t_ns"] = t_ns
    if kind != "data":
        return [stream_id.encode("ascii"), json.dumps(header, separators=(",", ":")).encode()]
    if samples is None:
        raise ValueError("a data message needs samples")
    array = np.asarray(samples)
    if array.dtype not in (np.int16, np.float32):
        raise ValueError(f"samples have dtype {array.dtype}: expected int16 or float32")
    array = array.reshape(len(array), -1)
    header.update(dtype=str(array.dtype), rate_hz=int(rate_hz), channels=int(array.shape[1]))
    payload = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return [stream_id.encode("ascii"), json.dumps(header, separators=(",", ":")).encode(), payload]


def topic(kind: str, stream_id: str) -> bytes:
    """Topic frame `kind/stream/` (trailing slash so stream `12` never matches `123`)."""
    return f"{kind}/{stream_id}/".encode()


def _dumps(header: dict[str, Any]) -> bytes:
    return json.dumps(header, separators=(",", ":"), allow_nan=False).encode()


def encode_pred(
    stream_id: str,
    seq: int,
    step0: int,
    scores: np.ndarray,
    labels: list[str],
    latency_ms: float,
    t_ns: int | None = None,
) -> list[bytes]:
    """A `pred` message: topic, header, float32 LE `[steps, classes]` payload."""
    header: dict[str, Any] = {
        "v": VERSION,
        "stream": stream_id,
        "seq": seq,
        "step0": step0,
        "steps": int(scores.shape[0]),
        "labels": labels,
        "latency_ms": round(latency_ms, 3),
    }
    if t_ns is not None:
        header["t_ns"] = t_ns
    payload = np.ascontiguousarray(scores, dtype="<f4").tobytes()
    return [topic("pred", stream_id), _dumps(header), payload]


class PredEncoder:
    """Fast `pred` encoding for one model: the labels' JSON is built once; stream ids are regex-checked ASCII."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = list(labels)
        self._labels_json = json.dumps(self.labels, separators=(",", ":"))

    def encode(
        self, stream_id: str, seq: int, step0: int, scores: np.ndarray, latency_ms: float, t_ns: int | None
    ) -> list[bytes]:
        t_field = "" if t_ns is None else f',"t_ns":{t_ns}'
        header = (
            f'{{"v":1,"stream":"{stream_id}","seq":{seq},"step0":{step0},"steps":{len(scores)},'
            f'"labels":{self._labels_json}{t_field},"latency_ms":{latency_ms:.3f}}}'
        )
        payload = scores.astype("<f4", copy=False).tobytes()
        return [b"pred/" + stream_id.encode() + b"/", header.encode(), payload]


def encode_event(stream_id: str, label: str, score: float, step: int, t_s: float, **extra: Any) -> list[bytes]:
    """An `event` message (a keyword detection); `t_s` is stream time in seconds."""
    header = {
        "v": VERSION,
        "stream": stream_id,
        "label": label,
        "score": round(float(score), 4),
        "step": step,
        "t_s": round(t_s, 4),
        **extra,
    }
    return [topic("event", stream_id), _dumps(header)]


def encode_status(stream_id: str | None, code: str, message: str, **extra: Any) -> list[bytes]:
    """A `status` message; `stream_id` None goes to the daemon-wide topic `status/*/`."""
    header = {"v": VERSION, "stream": stream_id, "code": code, "message": message, **extra}
    return [topic("status", stream_id or DAEMON_TOPIC_ID), _dumps(header)]


def decode_output(frames: list[bytes]) -> OutputMessage:
    """Decode a pred/event/status message as published; raises ProtocolError when malformed."""
    if len(frames) < 2:
        raise ProtocolError("bad_frames", f"output message has {len(frames)} frames: expected 2 or 3")
    parts = frames[0].decode("utf-8", "replace").split("/")
    if len(parts) != 3 or parts[0] not in ("pred", "event", "status") or parts[2] != "":
        raise ProtocolError("bad_topic", f"topic {frames[0][:60]!r}: expected pred|event|status/<stream>/")
    header = json.loads(frames[1])
    scores = None
    if parts[0] == "pred":
        if len(frames) != 3:
            raise ProtocolError("bad_frames", "pred message without payload frame")
        steps = int(header["steps"])
        scores = (
            np.frombuffer(frames[2], dtype="<f4").reshape(steps, -1)
            if steps
            else np.zeros((0, len(header["labels"])), np.float32)
        )
    kind: Literal["pred", "event", "status"] = parts[0]  # type: ignore[assignment]
    return OutputMessage(kind, parts[1], header, scores)
