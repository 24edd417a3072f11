"""Shards: several real daemons behind one Producer and one Subscriber; each stream lives in exactly one daemon."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import DaemonProcess, collect, speechlike, stitch

from streamer import Pipeline
from streamer.client import Producer, Subscriber, endpoint_list, shard_of, wait_until_serving
from streamer.errors import ConfigError

ATOL = 2e-5  # batched vs single-stream onnxruntime calls differ in the last bits


def test_shard_of_is_crc32_of_the_id_modulo_the_shard_count() -> None:
    # Pinned values: another language's producer must route exactly so (docs/protocol.md, "Shards").
    assert [shard_of(stream_id, 4) for stream_id in ("mic", "kitchen", "sensor-17", "a")] == [1, 0, 3, 3]
    assert shard_of("mic", 1) == 0
    counts = np.bincount([shard_of(f"s{i}", 7) for i in range(7000)], minlength=7)
    assert counts.min() > 850  # spread evenly: 1,000 each on average


def test_endpoint_lists() -> None:
    assert endpoint_list("tcp://127.0.0.1:5555") == ["tcp://127.0.0.1:5555"]
    assert endpoint_list("tcp://h:1, tcp://h:2,") == ["tcp://h:1", "tcp://h:2"]
    assert endpoint_list(["tcp://h:1", "tcp://h:2"]) == ["tcp://h:1", "tcp://h:2"]
    with pytest.raises(ValueError, match="no endpoint"):
        endpoint_list(" , ")
    with pytest.raises(ConfigError, match="one of each per daemon"):
        wait_until_serving("tcp://h:1,tcp://h:2", "tcp://h:3", timeout_s=0.1)


def test_streams_spread_over_two_daemons_each_equal_their_offline_runs(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path
) -> None:
    shards = [daemon_factory(keyword_model), daemon_factory(keyword_model)]
    ingests, publishes = [d.ingest for d in shards], [d.publish for d in shards]
    rng = np.random.default_rng(3)
    streams = {}
    for index in range(12):
        samples = speechlike(1.0 + rng.random(), seed=index)
        cuts = np.sort(rng.choice(np.arange(1, len(samples)), size=rng.integers(3, 12), replace=False))
        streams[f"shard-test-{index}"] = (samples, np.split(samples, cuts))
    owners = {sid: shard_of(sid, 2) for sid in streams}
    assert set(owners.values()) == {0, 1}  # both daemons get streams
    with (
        Producer(ingests) as producer,
        Subscriber(publishes, list(streams)) as both,
        Subscriber(publishes[0], list(streams), kinds=["pred"]) as first,
        Subscriber(publishes[1], list(streams), kinds=["pred"]) as second,
    ):
        wait_until_serving(ingests, publishes)
        time.sleep(0.3)
        pending = {sid: list(chunks) for sid, (_, chunks) in streams.items()}
        while any(pending.values()):
            for sid in rng.permutation(list(pending)):
                if pending[sid]:
                    producer.send(sid, pending[sid].pop(0), 16000)
        counts = {sid: len(chunks) for sid, (_, chunks) in streams.items()}

        def all_answered(messages: list) -> bool:
            preds = [m.stream_id for m in messages if m.kind == "pred"]
            return all(preds.count(sid) >= count for sid, count in counts.items())

        messages = collect(both, all_answered)
        per_daemon = []
        for subscriber in (first, second):
            got: set[str] = set()
            while (message := subscriber.recv(timeout_ms=300)) is not None:
                got.add(message.stream_id)
            per_daemon.append(got)
    assert not [m for m in messages if m.kind == "status"]
    for shard, got in enumerate(per_daemon):
        assert got == {sid for sid, owner in owners.items() if owner == shard}
    pipeline = Pipeline(keyword_model)
    for sid, (samples, _) in streams.items():
        offline = pipeline.push({sid: samples})[sid]
        np.testing.assert_allclose(stitch(messages, sid), offline, atol=ATOL, err_msg=sid)
