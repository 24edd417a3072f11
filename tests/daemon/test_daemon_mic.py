"""`streamer serve --mic` with a PulseAudio virtual microphone: the `mic` stream equals the offline Pipeline."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from daemon_helpers import DaemonProcess, collect, speechlike, stitch

from streamer import Pipeline
from streamer.client import Subscriber

pytestmark = pytest.mark.audio


@pytest.fixture(scope="module")
def virtual_mic() -> Iterator[Any]:
    """The audio tests' PulseAudio pipe-source microphone; skipped (with the reason) where it cannot run."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "audio"))
    try:
        from virtual_mic import virtual_mic_or_skip
    finally:
        sys.path.pop(0)
    with virtual_mic_or_skip() as mic:
        yield mic


def test_microphone_stream_equals_offline_pipeline(
    daemon_factory: Callable[..., DaemonProcess], keyword_model: Path, virtual_mic: Any
) -> None:
    daemon = daemon_factory(keyword_model, {"mic": {"enabled": True, "chunk_ms": 100.0, "stall_ms": 60000.0}})
    samples = speechlike(2.0, seed=9)[:, 0]
    with Subscriber(daemon.publish, ["mic"]) as subscriber:
        time.sleep(0.3)
        virtual_mic.write(samples)  # paced by PulseAudio: 2 s
        messages = collect(subscriber, lambda ms: sum(m.kind == "pred" for m in ms) >= 19, timeout_s=30)
    scores = stitch(messages, "mic")
    expected = Pipeline(keyword_model).push({"x": samples[:, None]})["x"]
    assert len(scores) >= 180  # 19 chunks of 100 ms at least: most of the 2 s arrived
    np.testing.assert_allclose(scores, expected[: len(scores)], atol=2e-5)
    assert daemon.stop() == 0
