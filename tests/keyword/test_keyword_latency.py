"""bench keyword-latency: matching and latency arithmetic on known answers; a miniature through a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from beep_model import RATE_HZ, write_beep_rig

from streamer.bench.keyword_latency import (
    ModelTiming,
    PlayedStream,
    Received,
    capture_ns,
    chunk_due_ns,
    chunk_ends,
    hit_latency,
    pair_events,
    steps_before,
    summarise,
)
from streamer.detect import DetectionParams
from streamer.evaluate.det import Truth, match, span_to_steps
from streamer.evaluate.events import Events
from streamer.evaluate.splice import SpliceResult

STEP_MS = 10.0
T0_NS = 5_000_000_000


def _timing(labels: tuple[str, ...] = ("_background", "hey", "stop")) -> ModelTiming:
    params = DetectionParams(
        labels=labels,
        keywords=tuple(range(1, len(labels))),
        thresholds=(0.5,) * (len(labels) - 1),
        smoothing_steps=1,
        patience_steps=1,
        refractory_s=0.0,
        step_period_s=STEP_MS / 1000,
    )
    return ModelTiming(rate_hz=RATE_HZ, hop_samples=160, win_samples=400, step_ms=STEP_MS, params=params)


def _stream(keyword: list[int], start_sample: list[int], end_sample: list[int], total_s: float = 3.0) -> PlayedStream:
    total = int(total_s * RATE_HZ)
    layout = SpliceResult(
        np.array(keyword, np.int64), np.array(start_sample, np.int64), np.array(end_sample, np.int64), total, total
    )
    names = [f"clip{i}.wav" for i in range(len(keyword))]
    return PlayedStream(np.zeros(total, np.int16), 1600, layout, names, RATE_HZ)


def test_chunk_times() -> None:
    assert chunk_ends(4000, 1600).tolist() == [1600, 3200, 4000]
    assert capture_ns(T0_NS, 16000, RATE_HZ) == T0_NS + 1_000_000_000
    assert chunk_due_ns(T0_NS, np.array([1600, 3200]), RATE_HZ).tolist() == [
        T0_NS + 1599 * 62_500,  # 1 / 16 kHz = 62.5 µs: a chunk leaves when its last sample is captured
        T0_NS + 3199 * 62_500,
    ]


def test_pair_events_known_answers() -> None:
    # positives: 0 = keyword 0 over steps [100, 150], 1 = keyword 1 over [300, 350], 2 = keyword 0 over [600, 650]
    keyword = np.array([0, 1, 0])
    start, end = np.array([100, 300, 600]), np.array([150, 350, 650])
    steps = np.array([50, 160, 170, 360, 370, 900, 700, 200])
    kinds = np.array([0, 0, 0, 0, 1, 0, 2, 1])
    hits, false_events = pair_events(steps, kinds, keyword, start, end, tolerance_after_steps=20)
    # event 1 hits positive 0 (10 steps late); event 2 repeats it; event 4 hits positive 1 (20 steps late, the edge);
    # event 0 precedes every window; 3 is keyword 0 in keyword 1's window; 5 is past positive 2's tolerance;
    # 6 is a keyword without positives; 7 is keyword 1 before its only window.
    assert hits == [(0, 1), (1, 4)]
    assert false_events == [0, 2, 3, 5, 6, 7]


def test_pair_events_agrees_with_eval_keyword_match() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        count, keywords = int(rng.integers(0, 8)), int(rng.integers(1, 4))
        start = np.sort(rng.choice(2000, size=count, replace=False)).astype(np.int64)
        end = start + rng.integers(0, 60, size=count)
        keyword = rng.integers(0, keywords, size=count)
        events = int(rng.integers(0, 12))
        steps = np.sort(rng.integers(0, 2200, size=events))
        kinds = rng.integers(0, keywords, size=events)
        tolerance = int(rng.integers(0, 80))
        hits, false_events = pair_events(steps, kinds, keyword, start, end, tolerance_after_steps=tolerance)
        positives, misses, false_accepts, latencies = match(
            Events(steps, kinds), Truth(keyword, start, end), tolerance_after_steps=tolerance, keywords=range(keywords)
        )
        assert (positives - misses, false_accepts) == (len(hits), len(false_events))
        assert sorted(latencies.tolist()) == sorted(int(steps[e] - end[p]) for p, e in hits)


def test_hit_latency_splits_exactly() -> None:
    timing = _timing()
    # The keyword's last loud sample is 16000 (captured at t0 + 1 s); its end step: the first frame holding it.
    stream = _stream([0], [8000], [16001])
    _, end_step = span_to_steps(stream.layout.start_sample, stream.layout.end_sample, hop=160, win=400)
    assert end_step.tolist() == [98]  # frame 98 covers samples [15680, 16080)
    due_ns = chunk_due_ns(T0_NS, stream.chunk_ends, RATE_HZ)
    received = Received(t0_ns=T0_NS, sent_ns=due_ns + 2_000_000)  # every chunk left 2 ms late
    # The event fired at step 105 (70 ms after the end step) in chunk 10 = samples [16000, 17600), and arrived
    # 250 ms after the keyword's last sample was captured.
    received.event_steps, received.event_labels, received.event_seqs = [105], ["hey"], [10]
    received.event_arrival_ns = [T0_NS + 1_250_000_000]
    received.daemon_ms_by_seq = {10: 12.0}
    hit = hit_latency(0, 0, stream, received, timing, end_step)
    assert hit.total_ms == pytest.approx(250.0)
    assert hit.detector_ms == pytest.approx(70.0)
    assert hit.chunk_wait_ms == pytest.approx(1599 / 16 - 70.0)  # chunk 10's last sample is 17599
    assert hit.send_lag_ms == pytest.approx(2.0)
    assert hit.daemon_ms == pytest.approx(12.0)
    assert hit.transport_ms == pytest.approx(250.0 - 1599 / 16 - 2.0 - 12.0)


def _three_keywords() -> tuple[PlayedStream, Received]:
    # Three keywords ending (last loud sample) at 0.5 s, 1.5 s and 2.5 s; the third is never detected.
    stream = _stream([0, 1, 0], [4000, 20000, 36000], [8001, 24001, 40001])
    due_ns = chunk_due_ns(T0_NS, stream.chunk_ends, RATE_HZ)
    received = Received(t0_ns=T0_NS, sent_ns=due_ns.copy())
    received.event_steps = [60, 70, 160, 270]  # a hit, a repeat (false), a hit, a wrong keyword (false)
    received.event_labels = ["hey", "hey", "stop", "stop"]
    received.event_seqs = [5, 6, 15, 26]
    received.event_arrival_ns = [T0_NS + 500_000_000 + 100_000_000, T0_NS, T0_NS + 1_500_000_000 + 300_000_000, T0_NS]
    received.daemon_ms_by_seq = {seq: 10.0 for seq in range(len(stream.chunk_ends))}
    step0 = steps_before(stream.chunk_starts, 160, 400)
    assert step0[:3].tolist() == [0, 8, 18]  # chunk 1 starts at sample 1600: frames 0..7 are complete
    received.step0_by_seq = dict(enumerate(step0.tolist()))
    return stream, received


def test_summarise_counts_and_percentiles() -> None:
    stream, received = _three_keywords()
    report = summarise(stream, received, _timing(), tolerance_after_s=1.0)
    assert report["aligned"] is True
    assert (report["played"], report["detected"], report["missed"], report["false_events"]) == (3, 2, 1, 2)
    assert [h["total_ms"] for h in report["hits"]] == [100.0, 300.0]
    assert (report["median_ms"], report["p90_ms"], report["max_ms"]) == (200.0, 280.0, 300.0)
    assert report["target_met"] is True
    assert report["median_parts_ms"]["daemon"] == 10.0
    assert report["median_parts_ms"]["send_lag"] == 0.0
    assert report["chunks_answered"] == report["chunks"] == 30
    assert report["false_event_steps"] == [70, 270]


def test_summarise_scores_only_up_to_a_dropped_chunk() -> None:
    stream, received = _three_keywords()
    del received.daemon_ms_by_seq[20], received.step0_by_seq[20]  # chunk 20 (from 2.0 s) was dropped: no pred
    for seq in range(21, len(stream.chunk_ends)):
        received.step0_by_seq[seq] -= 10  # and every later step is 10 steps (one chunk of audio) early
    report = summarise(stream, received, _timing(), tolerance_after_s=1.0)
    assert report["aligned"] is False and report["scored_until_s"] == 2.0
    # Only the first keyword's window (to 0.5 s + 1 s) ends before 2.0 s; events from the second keyword's start on
    # are left out, not counted as false.
    assert (report["played"], report["played_in_stream"], report["detected"], report["false_events"]) == (1, 3, 1, 1)
    assert [h["total_ms"] for h in report["hits"]] == [100.0]


# ------------------------------------------------------------------------------------ through a real daemon

TONE_S = 0.3


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("latencyrig")
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(RATE_HZ * 5) * 10 ** (-70 / 20)).astype(np.float32)  # the bench's noise floor
    write_beep_rig(root, rng, quiet, TONE_S, positives=5)
    return root


@pytest.mark.slow
def test_bench_keyword_latency_through_a_real_daemon(rig: Path) -> None:
    chunk_ms = 50.0
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "bench",
            "keyword-latency",
            "--model",
            str(rig / "model.onnx"),
            "--positives",
            str(rig / "positives"),
            "--max-positives",
            "4",
            "--min-gap-s",
            "1.2",
            "--chunk-ms",
            str(chunk_ms),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["played"], report["detected"], report["false_events"]) == (4, 4, 0)
    assert report["chunks_answered"] == report["chunks"]
    assert report["offline_events_equal"] is True  # the daemon fired exactly where eval-keyword's arithmetic does
    assert report["audio_s"] < 15
    for hit in report["hits"]:
        parts = ("detector_ms", "chunk_wait_ms", "send_lag_ms", "daemon_ms", "transport_ms")
        assert sum(hit[p] for p in parts) == pytest.approx(hit["total_ms"], abs=0.05)
        # The event fires 2 steps (patience) into the tone; the keyword "ends" when the tone does.
        assert -TONE_S * 1000 <= hit["detector_ms"] <= -TONE_S * 1000 + 60
        assert 0 <= hit["chunk_wait_ms"] < chunk_ms + STEP_MS  # at most a chunk plus the frame's alignment
        assert hit["send_lag_ms"] >= 0 and hit["daemon_ms"] > 0
        assert hit["transport_ms"] >= -0.5  # the event cannot arrive before its chunk left and the daemon answered
        assert 0 < hit["total_ms"] - hit["detector_ms"] - hit["chunk_wait_ms"] < 2000  # wall-clock share, loaded CI
    assert report["median_ms"] == pytest.approx(float(np.median([h["total_ms"] for h in report["hits"]])), abs=0.1)
