"""The wire decoder under generated hostile input: it decodes or refuses with a status code, nothing else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.bench.fuzz import STATUS_CODES, run_fuzz
from streamer.daemon import protocol
from streamer.errors import ProtocolError

LIMITS = protocol.IngestLimits()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_subnormal=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1, 1, 2, "1", None, 1.0]) | json_values,
        "seq": st.integers(-5, 2**64) | json_values,
        "kind": st.sampled_from(["data", "reset", "end", "DATA", ""]) | json_values,
        "dtype": st.sampled_from(["int16", "float32", "float64", "<f4"]) | json_values,
        "rate_hz": st.integers(-1, 2_000_000) | json_values,
        "channels": st.integers(-1, 2000) | json_values,
        "t_ns": st.integers(-1, 2**64) | json_values,
    },
)


def decode_or_refuse(frames: list[bytes]) -> None:
    try:
        protocol.decode_ingest(frames, LIMITS)
    except ProtocolError as exc:
        assert exc.code in STATUS_CODES, exc.code


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=140), headers, st.binary(max_size=64))
def test_structured_headers_decode_or_refuse(stream_id: bytes, header: dict[str, object], payload: bytes) -> None:
    decode_or_refuse([stream_id, json.dumps(header).encode(), payload])
    decode_or_refuse([stream_id, json.dumps(header).encode()])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=5))
def test_arbitrary_frames_decode_or_refuse(frames: list[bytes]) -> None:
    decode_or_refuse(frames)


def test_generated_and_mutated_messages() -> None:
    """A CI-sized run of the fuzz benchmark (`streamer bench fuzz` runs 100,000)."""
    report = run_fuzz(3000, seed=7)
    assert report.crashes == []
    assert report.ok, report.to_json()
    assert report.accepted > 0 and sum(report.rejected.values()) > 0
    assert report.accepted + sum(report.rejected.values()) == report.messages
