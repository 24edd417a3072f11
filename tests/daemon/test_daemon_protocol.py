"""Wire protocol v1 codec: round trips, every refusal with its status code, and no other exception on any input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.daemon.protocol import (
    IngestLimits,
    PredEncoder,
    decode_ingest,
    decode_output,
    encode_event,
    encode_ingest,
    encode_pred,
    encode_status,
)
from streamer.errors import ProtocolError

LIMITS = IngestLimits(max_payload_bytes=64_000)


def header(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "seq": 0, "kind": "data", "dtype": "int16", "rate_hz": 16000, "channels": 1}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_data_round_trip_keeps_samples_and_fields() -> None:
    samples = np.arange(-300, 300, dtype=np.int16).reshape(-1, 2)
    message = decode_ingest(encode_ingest("mic.1:a-b_c", 7, "data", samples, 48000, t_ns=123), LIMITS)
    assert (message.stream_id, message.seq, message.kind, message.rate_hz, message.channels, message.t_ns) == (
        "mic.1:a-b_c",
        7,
        "data",
        48000,
        2,
        123,
    )
    np.testing.assert_array_equal(message.samples, samples)


def test_float32_payload_is_little_endian_interleaved() -> None:
    payload = np.array([[1.5, -2.0], [0.25, 3.0]], dtype="<f4").tobytes()
    message = decode_ingest([b"s", header(dtype="float32", channels=2), payload], LIMITS)
    np.testing.assert_array_equal(message.samples, [[1.5, -2.0], [0.25, 3.0]])


@pytest.mark.parametrize("kind", ["reset", "end"])
def test_control_messages_have_two_frames(kind: str) -> None:
    message = decode_ingest(encode_ingest("s", 3, kind), LIMITS)  # type: ignore[arg-type]
    assert message.kind == kind and message.samples is None
    with pytest.raises(ProtocolError) as caught:
        decode_ingest([*encode_ingest("s", 3, kind), b""], LIMITS)  # type: ignore[arg-type]
    assert caught.value.code == "bad_frames"


BAD = {
    "one frame": ([b"s"], "bad_frames"),
    "four frames": ([b"s", header(), b"\0\0", b""], "bad_frames"),
    "data without payload": ([b"s", header()], "bad_frames"),
    "empty id": ([b"", header(), b"\0\0"], "bad_stream_id"),
    "id with slash": ([b"a/b", header(), b"\0\0"], "bad_stream_id"),
    "id too long": ([b"x" * 129, header(), b"\0\0"], "bad_stream_id"),
    "id not utf-8": ([b"\xff\xfe", header(), b"\0\0"], "bad_stream_id"),
    "not json": ([b"s", b"{v:1", b"\0\0"], "bad_header"),
    "json list": ([b"s", b"[1]", b"\0\0"], "bad_header"),
    "version 2": ([b"s", header(v=2), b"\0\0"], "bad_version"),
    "version true": ([b"s", header(v=True), b"\0\0"], "bad_version"),
    "seq negative": ([b"s", header(seq=-1), b"\0\0"], "bad_header"),
    "seq float": ([b"s", header(seq=1.0), b"\0\0"], "bad_header"),
    "seq bool": ([b"s", header(seq=True), b"\0\0"], "bad_header"),
    "seq missing": ([b"s", header(seq=None), b"\0\0"], "bad_header"),
    "kind unknown": ([b"s", header(kind="flush"), b"\0\0"], "bad_header"),
    "dtype float64": ([b"s", header(dtype="float64"), b"\0" * 8], "bad_header"),
    "rate zero": ([b"s", header(rate_hz=0), b"\0\0"], "bad_header"),
    "rate string": ([b"s", header(rate_hz="16000"), b"\0\0"], "bad_header"),
    "channels zero": ([b"s", header(channels=0), b"\0\0"], "bad_header"),
    "odd int16 payload": ([b"s", header(), b"\0\0\0"], "bad_payload"),
    "stereo half frame": ([b"s", header(channels=2), b"\0\0"], "bad_payload"),
    "huge payload": ([b"s", header(), b"\0" * 64_002], "bad_payload"),
    "nan": ([b"s", header(dtype="float32"), np.array([0.0, np.nan], "<f4").tobytes()], "bad_payload"),
    "inf": ([b"s", header(dtype="float32"), np.array([np.inf], "<f4").tobytes()], "bad_payload"),
    "t_ns negative": ([b"s", header(t_ns=-5), b"\0\0"], "bad_header"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_message_is_refused_with_its_status_code(case: str) -> None:
    frames, code = BAD[case]
    with pytest.raises(ProtocolError) as caught:
        decode_ingest(frames, LIMITS)
    assert caught.value.code == code
    assert str(caught.value)  # says what was wrong


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=0, max_size=5))
def test_any_frames_decode_or_raise_protocol_error(frames: list[bytes]) -> None:
    try:
        decode_ingest(frames, LIMITS)
    except ProtocolError as exc:
        assert exc.code.startswith("bad_")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["v", "seq", "kind", "dtype", "rate_hz", "channels", "t_ns"]),
        st.one_of(st.none(), st.booleans(), st.integers(-5, 2**70), st.floats(), st.text(max_size=8)),
    ),
    st.binary(max_size=40),
)
def test_any_header_decodes_or_raises_protocol_error(fields: dict[str, object], payload: bytes) -> None:
    try:
        frames = [b"s", json.dumps(fields).encode(), payload]
    except ValueError:
        return
    try:
        message = decode_ingest(frames, LIMITS)
    except ProtocolError as exc:
        assert exc.code.startswith("bad_")
        return
    assert message.seq >= 0 and message.kind in ("data", "reset", "end")


def test_pred_topic_has_trailing_slash_and_payload_round_trips() -> None:
    scores = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    frames = encode_pred("12", 5, 40, scores, ["a", "b", "c", "d"], 1.25, t_ns=99)
    assert frames[0] == b"pred/12/" and not frames[0].startswith(b"pred/123")
    message = decode_output(frames)
    assert message.header == {
        "v": 1,
        "stream": "12",
        "seq": 5,
        "step0": 40,
        "steps": 3,
        "labels": ["a", "b", "c", "d"],
        "latency_ms": 1.25,
        "t_ns": 99,
    }
    np.testing.assert_array_equal(message.scores, scores)


def test_fast_pred_encoder_matches_the_reference_encoder() -> None:
    scores = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    fast = PredEncoder(["x", "y", "z"]).encode("s:1", 9, 18, scores, 2.5, None)
    slow = encode_pred("s:1", 9, 18, scores, ["x", "y", "z"], 2.5)
    assert fast[0] == slow[0] and fast[2] == slow[2]
    assert json.loads(fast[1]) == json.loads(slow[1])


def test_event_and_status_headers() -> None:
    event = decode_output(encode_event("mic", "hey", 0.91234, 120, 1.21))
    assert event.kind == "event" and event.header["label"] == "hey" and event.header["t_s"] == 1.21
    status = decode_output(encode_status(None, "bad_stream_id", "nope"))
    assert status.kind == "status" and status.stream_id == "*" and status.header["stream"] is None
