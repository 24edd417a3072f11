"""The README's first minute, as a newcomer runs it: a daemon with the shipped keyword model, `streamer listen --json`
in one process and `streamer feed examples/audio/keywords.wav` in another. The clip's four keywords come out as four
events, in order, each while (or just after) it is spoken; its first sentence fires nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from daemon_helpers import DaemonProcess

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "audio" / "keywords.wav"
SHIPPED = REPO / "models" / "keywords" / "model.onnx"
LATE_S = 0.6  # an event comes at most this long after the keyword's end (detector delay + one 100 ms chunk)


def test_the_demo_clip_fed_to_the_shipped_model_gives_its_four_keywords(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    spoken = json.loads(DEMO.with_suffix(".json").read_text())["keywords"]
    daemon = daemon_factory(SHIPPED)
    listen = subprocess.Popen(
        [sys.executable, "-m", "streamer.cli.main", "listen", "--json", "--endpoint", daemon.publish],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.0)  # the subscriber connects before anything is published (ZeroMQ's slow joiner)
        # --fast: as fast as answered (the README's feed paces in real time; the events are the same)
        command = [sys.executable, "-m", "streamer.cli.main", "feed", str(DEMO), "--endpoint", daemon.ingest]
        feed = subprocess.run(
            [*command, "--fast", "--publish", daemon.publish],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert feed.returncode == 0, feed.stderr
        records = []
        assert listen.stdout is not None
        for line in listen.stdout:
            records.append(json.loads(line))
            if records[-1]["kind"] == "status" and records[-1]["code"] == "ended":
                break
    finally:
        listen.terminate()
        listen.communicate(timeout=10)  # also closes its stdout
    assert {r["stream"] for r in records} == {"keywords"}
    events = [(r["label"], r["t_s"]) for r in records if r["kind"] == "event"]
    assert [label for label, _ in events] == [k["label"] for k in spoken], events
    for (_, t_s), keyword in zip(events, spoken, strict=True):
        assert keyword["start_s"] < t_s <= keyword["end_s"] + LATE_S, (t_s, keyword)
    assert sum(r["kind"] == "pred" for r in records) == 145  # 14.5 s in 100 ms chunks, each answered
