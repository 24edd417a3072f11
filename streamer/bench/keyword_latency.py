"""`streamer bench keyword-latency`: how long after a keyword ends its `event` reaches a subscriber of a real daemon.

A real daemon process (`streamer serve`, on free loopback ports) serves a keyword model. One stream is played into
it in real time, as a microphone would deliver it: keyword clips spliced between stretches of negative audio (or a
quiet noise floor) by the same `Splicer` that `streamer eval-keyword` uses, so the layout and each keyword's end
(its last loud sample, `active_span`) are known. Sample n is "captured" at t0 + n / rate; each chunk is sent when its
last sample has been captured. A subscriber stamps every `event` on arrival.

Events are matched to keywords by eval-keyword's rule (`streamer.evaluate.det.match`: the first event of the right
keyword between the keyword's start and `tolerance` after its end is a hit, every other event is false). A hit's
latency = arrival of its event − capture time of the keyword's last sample, split exactly into

- `detector_ms`: stream time from the keyword's end to the step that fired (eval-keyword's latency, ± one step);
- `chunk_wait_ms`: the rest of the stream time until the chunk that carried the firing step was complete
  (a chunk is sent only when its last sample is captured), plus the sub-step alignment of the frame;
- `send_lag_ms`: how late that chunk actually left the producer;
- `daemon_ms`: the daemon's own time for that chunk, receipt to publish (its `pred`'s `latency_ms`);
- `transport_ms`: the remainder: ZeroMQ both ways, the detector, the subscriber waking up.

Everything runs on one process clock (`time.monotonic_ns`). No torch here: the daemon never imports it, nor do we.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.bench.daemon import DaemonProcess, ours
from streamer.client import Producer, Subscriber
from streamer.detect import DetectionParams
from streamer.errors import ConfigError, ModelError
from streamer.evaluate import audio
from streamer.evaluate.det import span_to_steps
from streamer.evaluate.events import Events, EventTrack
from streamer.evaluate.run import _label_folders
from streamer.evaluate.splice import Positive, SplicePlan, Splicer, SpliceResult
from streamer.frontend import AUDIO_KINDS, audio_framing
from streamer.pipeline import Pipeline

STREAM_ID = "kwlat"
HELLO_ID = "kwlat-hello"  # a throw-away stream: proves our subscription reached the daemon before we play
NOISE_FLOOR_DBFS = -70.0  # the stretches between keywords when no negatives are given
TARGET_MEDIAN_MS = 300.0  # issue 5: the event arrives within 300 ms (median) of the keyword's end
START_DELAY_NS = 300_000_000  # t0 lies this far after the handshake
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class LatencyOptions:
    """What is played (see the module docstring and docs/keywords.md)."""

    positives_dir: Path
    negatives_dir: Path | None = None
    noise_dir: Path | None = None
    snr_db: float | None = None
    chunk_ms: float = 100.0
    max_positives: int = 60  # a seeded subset, spread evenly over the keywords
    min_gap_s: float = 3.0  # least audio between two keywords; the mean gap is about 1 s more
    tolerance_after_s: float = 1.0  # eval-keyword's window: a hit may come this late after the keyword's end
    level_dbfs: float = -26.0  # each keyword's speech RMS, as eval-keyword
    seed: int = 0


@dataclass(frozen=True)
class ModelTiming:
    """The model's framing (a step covers samples [k·hop_samples, k·hop_samples + win_samples)) and detection."""

    rate_hz: int
    hop_samples: int
    win_samples: int
    step_ms: float
    params: DetectionParams

    @property
    def keywords(self) -> list[str]:
        return [self.params.labels[k] for k in self.params.keywords]


@dataclass(frozen=True)
class PlayedStream:
    """The whole stream as int16 (what a microphone delivers), cut into chunks, and where each keyword lies."""

    samples: np.ndarray  # int16 [total]
    chunk_samples: int
    layout: SpliceResult
    names: list[str]  # clip of each positive, in stream order
    rate_hz: int

    @property
    def chunk_ends(self) -> np.ndarray:
        """Exclusive end sample of each chunk (the last may be shorter)."""
        return chunk_ends(len(self.samples), self.chunk_samples)

    @property
    def chunk_starts(self) -> np.ndarray:
        return np.concatenate(([0], self.chunk_ends[:-1])).astype(np.int64)

    def chunks(self) -> list[np.ndarray]:
        """The chunks in order (seq 0, 1, ...)."""
        starts, ends = self.chunk_starts.tolist(), self.chunk_ends.tolist()
        return [self.samples[start:end] for start, end in zip(starts, ends, strict=True)]


@dataclass
class Received:
    """What the subscriber saw, all times on `time.monotonic_ns`."""

    t0_ns: int  # capture time of sample 0
    sent_ns: np.ndarray  # per chunk (= seq): when it was handed to the PUSH socket
    event_steps: list[int] = field(default_factory=list)
    event_labels: list[str] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)
    event_arrival_ns: list[int] = field(default_factory=list)
    daemon_ms_by_seq: dict[int, float] = field(default_factory=dict)  # each pred's latency_ms
    step0_by_seq: dict[int, int] = field(default_factory=dict)  # each pred's first step
    statuses: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class HitLatency:
    """One detected keyword: its total latency and the parts it splits into exactly (see the module docstring)."""

    positive: int
    keyword: str
    total_ms: float
    detector_ms: float
    chunk_wait_ms: float
    send_lag_ms: float
    daemon_ms: float
    transport_ms: float


# ---------------------------------------------------------------------------------------------------------- times


def chunk_ends(total_samples: int, chunk_samples: int) -> np.ndarray:
    """Exclusive end sample of each chunk of `chunk_samples` (the last one may be shorter)."""
    return np.minimum(np.arange(1, math.ceil(total_samples / chunk_samples) + 1) * chunk_samples, total_samples)


def capture_ns(t0_ns: int, sample: np.ndarray | int, rate_hz: int) -> np.ndarray:
    """When sample `sample` was captured: t0 + n / rate (ns, int64)."""
    return t0_ns + np.asarray(sample, np.int64) * NS_PER_S // rate_hz


def chunk_due_ns(t0_ns: int, ends: np.ndarray, rate_hz: int) -> np.ndarray:
    """When each chunk may be sent: the capture time of its last sample."""
    return capture_ns(t0_ns, np.asarray(ends, np.int64) - 1, rate_hz)


def steps_before(samples: np.ndarray, hop_samples: int, win_samples: int) -> np.ndarray:
    """How many steps a frontend has emitted after `samples` samples (frame k covers [k·hop, k·hop + win))."""
    count = np.asarray(samples, np.int64)
    return np.where(count >= win_samples, (count - win_samples) // hop_samples + 1, 0)


def first_misaligned_seq(stream: PlayedStream, received: Received, timing: ModelTiming) -> int | None:
    """The first chunk with no `pred`, or whose `step0` is not where the audio sent puts it (a chunk the daemon
    dropped under overload shifts every later step off the audio); None when every chunk lines up."""
    expected = steps_before(stream.chunk_starts, timing.hop_samples, timing.win_samples)
    for seq, step0 in enumerate(expected.tolist()):
        if received.step0_by_seq.get(seq) != step0:
            return seq
    return None


# ------------------------------------------------------------------------------------------------------- matching


def pair_events(
    event_steps: np.ndarray,
    event_keywords: np.ndarray,
    keyword: np.ndarray,
    start_step: np.ndarray,
    end_step: np.ndarray,
    *,
    tolerance_after_steps: int,
) -> tuple[list[tuple[int, int]], list[int]]:
    """(hits as (positive index, event index), false event indices), by `streamer.evaluate.det.match`'s rule.

    Per keyword, an event belongs to the latest positive of that keyword that started at or before it, when it comes
    no later than that positive's end + tolerance; the first such event of a positive is its hit, every other event
    (outside every window, a repeat inside one, or of a keyword no positive has) is false."""
    steps, kinds = np.asarray(event_steps, np.int64), np.asarray(event_keywords, np.int64)
    hits: list[tuple[int, int]] = []
    false_events: list[int] = []
    for k in np.unique(kinds):
        mine = np.flatnonzero(keyword == k)
        order = mine[np.argsort(start_step[mine], kind="stable")]
        events = np.flatnonzero(kinds == k)
        events = events[np.argsort(steps[events], kind="stable")]
        window = np.searchsorted(start_step[order], steps[events], side="right") - 1
        taken: set[int] = set()
        for event, w in zip(events.tolist(), window.tolist(), strict=True):
            inside = w >= 0 and steps[event] <= end_step[order[w]] + tolerance_after_steps
            if inside and w not in taken:
                taken.add(w)
                hits.append((int(order[w]), event))
            else:
                false_events.append(event)
    return sorted(hits), sorted(false_events)


def hit_latency(
    positive: int, event: int, stream: PlayedStream, received: Received, timing: ModelTiming, end_step: np.ndarray
) -> HitLatency:
    """The latency of one hit and its exact split (every part in ms; they sum to `total_ms`)."""
    rate_hz = timing.rate_hz
    last_sample = int(stream.layout.end_sample[positive]) - 1  # the keyword's last loud sample
    seq = received.event_seqs[event]
    chunk_last_sample = int(stream.chunk_ends[seq]) - 1
    due_ns = int(capture_ns(received.t0_ns, chunk_last_sample, rate_hz))
    total_ms = (received.event_arrival_ns[event] - int(capture_ns(received.t0_ns, last_sample, rate_hz))) / 1e6
    stream_ms = (chunk_last_sample - last_sample) * 1000 / rate_hz
    detector_ms = (received.event_steps[event] - int(end_step[positive])) * timing.step_ms
    send_lag_ms = (int(received.sent_ns[seq]) - due_ns) / 1e6
    daemon_ms = received.daemon_ms_by_seq.get(seq, math.nan)
    return HitLatency(
        positive=positive,
        keyword=received.event_labels[event],
        total_ms=total_ms,
        detector_ms=detector_ms,
        chunk_wait_ms=stream_ms - detector_ms,
        send_lag_ms=send_lag_ms,
        daemon_ms=daemon_ms,
        transport_ms=total_ms - stream_ms - send_lag_ms - daemon_ms,
    )


# -------------------------------------------------------------------------------------------------- the stream


def model_timing(model: Path) -> ModelTiming:
    """The model's rate, framing and detection parameters, resolved as the daemon resolves them (no overrides)."""
    pipeline = Pipeline(model)
    spec = pipeline.engine.spec
    frontend = spec.frontend or {}
    rate_hz, step_s = pipeline.sample_rate_hz, pipeline.step_period_s
    if frontend.get("kind") not in AUDIO_KINDS or rate_hz is None or step_s is None:
        raise ModelError(
            f"{model}: keyword latency needs an audio model (frontend logmel or waveform), "
            f"this one has frontend {frontend}"
        )
    params = DetectionParams.resolve(spec.labels, spec.metadata, step_s, scores_are_logits=spec.scores == "logits")
    if params is None:
        raise ModelError(f"{model}: no streamer.detection metadata: the daemon publishes no events for it")
    win_samples, hop_samples = audio_framing(frontend)
    return ModelTiming(
        rate_hz=rate_hz,
        hop_samples=hop_samples,
        win_samples=win_samples,
        step_ms=step_s * 1000,
        params=params,
    )


def _chosen_positives(options: LatencyOptions, timing: ModelTiming, rng: np.random.Generator) -> list[Positive]:
    """A seeded subset of at most `max_positives` clips, spread evenly over the keywords."""
    folders = _label_folders(options.positives_dir, timing.keywords)
    per_keyword = math.ceil(options.max_positives / max(1, len(folders)))
    chosen: list[tuple[int, Path]] = []
    for k, paths in sorted(folders.items()):
        picked = rng.choice(len(paths), size=min(per_keyword, len(paths)), replace=False)
        chosen += [(k, paths[i]) for i in sorted(picked.tolist())]
    if len(chosen) > options.max_positives:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), options.max_positives, replace=False).tolist())]
    return [Positive(k, str(path), audio.load(path, timing.rate_hz)) for k, path in chosen]


def _negative_audio(
    folder: Path | None, needed_samples: int, rate_hz: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """`needed_samples` of negative audio: files of `folder` in a random order (only as many as needed), or a
    quiet noise floor."""
    if folder is None:
        return [(rng.standard_normal(needed_samples) * 10 ** (NOISE_FLOOR_DBFS / 20)).astype(np.float32)]
    paths = audio.audio_files(folder)
    pieces: list[np.ndarray] = []
    held = 0
    for i in rng.permutation(len(paths)).tolist():
        samples = audio.load(paths[i], rate_hz)[: needed_samples - held]
        pieces.append(samples)
        held += len(samples)
        if held >= needed_samples:
            return pieces
    raise ConfigError(
        f"{folder}: {held / rate_hz:.0f} s of negative audio, the stream needs {needed_samples / rate_hz:.0f} s; "
        "give fewer positives, a shorter --min-gap-s or more negatives"
    )


def build_stream(options: LatencyOptions, timing: ModelTiming) -> PlayedStream:
    """The played stream: positives spliced into negatives (eval-keyword's Splicer), int16 like a microphone."""
    if options.chunk_ms <= 0 or options.max_positives < 1 or options.min_gap_s < 0:
        raise ConfigError(
            f"chunk_ms={options.chunk_ms}, max_positives={options.max_positives}, min_gap_s={options.min_gap_s}: "
            "expected chunk_ms > 0, max_positives >= 1, min_gap_s >= 0"
        )
    rng = np.random.default_rng(options.seed)
    rate_hz = timing.rate_hz
    positives = _chosen_positives(options, timing, rng)
    needed = round(len(positives) * (options.min_gap_s + 1.0) * rate_hz)
    negatives = _negative_audio(options.negatives_dir, needed, rate_hz, rng)
    noise = [audio.load(p, rate_hz) for p in audio.audio_files(options.noise_dir)] if options.noise_dir else []
    plan = SplicePlan(
        min_gap_s=options.min_gap_s, level_dbfs=options.level_dbfs, snr_db=options.snr_db, seed=options.seed
    )
    splicer = Splicer(positives, negatives, noise, plan, rate_hz)
    chunk_samples = max(1, round(options.chunk_ms * rate_hz / 1000))
    floats = np.concatenate(list(splicer.chunks(chunk_samples)))
    samples = np.clip(np.round(floats * 32767), -32768, 32767).astype(np.int16)
    names = [str(Path(p.name).relative_to(options.positives_dir)) for p in splicer.positives]
    return PlayedStream(samples, chunk_samples, splicer.layout(), names, rate_hz)


def offline_events(model: Path, stream: PlayedStream, timing: ModelTiming) -> Events:
    """The events eval-keyword's arithmetic predicts for the same int16 chunks through an in-process Pipeline."""
    pipeline = Pipeline(model)
    scores = [pipeline.push({STREAM_ID: chunk}, rate_hz=timing.rate_hz)[STREAM_ID] for chunk in stream.chunks()]
    return EventTrack(np.concatenate(scores), timing.params).events(timing.params.thresholds)


# -------------------------------------------------------------------------------------------------- playing


def _handshake(producer: Producer, subscriber: Subscriber, rate_hz: int, timeout_s: float = 30.0) -> None:
    """Send silence on HELLO_ID until its `pred` reaches *our* subscriber (ZeroMQ's slow joiner), then end it."""
    deadline_s = time.monotonic() + timeout_s
    silence = np.zeros(rate_hz // 100, np.int16)
    while time.monotonic() < deadline_s:
        producer.send(HELLO_ID, silence, rate_hz)
        message = subscriber.recv(timeout_ms=200)
        while message is not None:
            if message.stream_id == HELLO_ID and message.kind == "pred":
                producer.end(HELLO_ID)
                return
            message = subscriber.recv(timeout_ms=0)
    raise ConfigError(f"the daemon never answered the handshake within {timeout_s:g} s")


def _take(subscriber: Subscriber, received: Received, timeout_ms: int) -> None:
    """Wait up to `timeout_ms` for messages; stamp and file every one that is there."""
    message = subscriber.recv(timeout_ms=timeout_ms)
    while message is not None:
        arrival_ns = time.monotonic_ns()
        if message.stream_id == STREAM_ID:
            header = message.header
            if message.kind == "event":
                received.event_steps.append(int(header["step"]))
                received.event_labels.append(str(header["label"]))
                received.event_seqs.append(int(header["seq"]))
                received.event_arrival_ns.append(arrival_ns)
            elif message.kind == "pred":
                received.daemon_ms_by_seq[int(header["seq"])] = float(header["latency_ms"])
                received.step0_by_seq[int(header["seq"])] = int(header["step0"])
            else:
                received.statuses.append(dict(header))
        message = subscriber.recv(timeout_ms=0)


def play(stream: PlayedStream, ingest: str, publish: str, *, rate_hz: int, tail_s: float) -> Received:
    """Play `stream` in real time as STREAM_ID; collect events, preds' daemon times and statuses until `tail_s`
    after the last chunk (and every chunk is answered), then end the stream."""
    ends = stream.chunk_ends
    with Producer(ingest) as producer, Subscriber(publish, [STREAM_ID, HELLO_ID]) as subscriber:
        _handshake(producer, subscriber, rate_hz)
        t0_ns = time.monotonic_ns() + START_DELAY_NS
        wall_offset_ns = time.time_ns() - time.monotonic_ns()  # header t_ns is Unix time (docs/protocol.md)
        due_ns = chunk_due_ns(t0_ns, ends, rate_hz)
        received = Received(t0_ns=t0_ns, sent_ns=np.zeros(len(ends), np.int64))
        for seq, chunk in enumerate(stream.chunks()):
            while (wait_ns := int(due_ns[seq]) - time.monotonic_ns()) > 0:
                _take(subscriber, received, timeout_ms=max(1, -(-wait_ns // 1_000_000)))
            first_sample = int(ends[seq]) - len(chunk)
            received.sent_ns[seq] = time.monotonic_ns()
            producer.send(
                STREAM_ID, chunk, rate_hz, t_ns=wall_offset_ns + int(capture_ns(t0_ns, first_sample, rate_hz))
            )
        stop_ns = time.monotonic_ns() + int(tail_s * NS_PER_S)
        while time.monotonic_ns() < stop_ns or (
            len(received.daemon_ms_by_seq) < len(ends) and time.monotonic_ns() < stop_ns + 5 * NS_PER_S
        ):
            _take(subscriber, received, timeout_ms=20)
        producer.end(STREAM_ID)
        _take(subscriber, received, timeout_ms=200)
    return received


# -------------------------------------------------------------------------------------------------- the report


def _percentile_ms(values: list[float], q: float) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return round(float(np.percentile(finite, q)), 1) if finite else None


def scored_subset(
    cutoff_seq: int | None,
    stream: PlayedStream,
    received: Received,
    timing: ModelTiming,
    steps: tuple[np.ndarray, np.ndarray],
    tolerance_steps: int,
) -> tuple[np.ndarray, list[int]]:
    """(positives, events) to score: the keywords whose whole window lies before chunk `cutoff_seq` (the first that
    did not line up), and the events before it and before the first keyword left out. None: everything."""
    start_step, end_step = steps
    if cutoff_seq is None:
        return np.arange(len(end_step)), list(range(len(received.event_steps)))
    cutoff_step = int(steps_before(stream.chunk_starts[cutoff_seq], timing.hop_samples, timing.win_samples))
    positives = np.flatnonzero(end_step + tolerance_steps < cutoff_step)
    left_out = np.setdiff1d(np.arange(len(end_step)), positives)
    horizon_step = min(cutoff_step, int(start_step[left_out].min()) if len(left_out) else cutoff_step)
    events = [
        e
        for e, (seq, step) in enumerate(zip(received.event_seqs, received.event_steps, strict=True))
        if seq < cutoff_seq and step < horizon_step
    ]
    return positives, events


def _health(stream: PlayedStream, received: Received, rate_hz: int) -> dict[str, Any]:
    """Over every chunk, not just the hits: how late the producer sent, how long the daemon took."""
    lags_ms = (received.sent_ns - chunk_due_ns(received.t0_ns, stream.chunk_ends, rate_hz)) / 1e6
    daemon_ms = list(received.daemon_ms_by_seq.values())
    return {
        "send_lag_p99_ms": round(float(np.percentile(lags_ms, 99)), 2),
        "send_lag_max_ms": round(float(lags_ms.max()), 2),
        "chunks_sent_over_50_ms_late": int((lags_ms > 50).sum()),
        "daemon_ms_all_chunks": {f"p{q}": _percentile_ms(daemon_ms, q) for q in (50, 99)}
        | {"max": round(max(daemon_ms), 1) if daemon_ms else None},
    }


def summarise(
    stream: PlayedStream, received: Received, timing: ModelTiming, tolerance_after_s: float
) -> dict[str, Any]:
    """Match the received events to the keywords and reduce the hits' latencies to a report."""
    start_step, end_step = span_to_steps(
        stream.layout.start_sample, stream.layout.end_sample, hop=timing.hop_samples, win=timing.win_samples
    )
    index = {label: k for k, label in enumerate(timing.keywords)}
    tolerance_steps = round(tolerance_after_s * 1000 / timing.step_ms)
    cutoff_seq = first_misaligned_seq(stream, received, timing)
    positives, events = scored_subset(cutoff_seq, stream, received, timing, (start_step, end_step), tolerance_steps)
    kinds = np.array([index.get(received.event_labels[e], -1) for e in events], np.int64)
    hits_in_subsets, false_in_subset = pair_events(
        np.array([received.event_steps[e] for e in events], np.int64),
        kinds,
        stream.layout.keyword[positives],
        start_step[positives],
        end_step[positives],
        tolerance_after_steps=tolerance_steps,
    )
    hits = [(int(positives[p]), events[e]) for p, e in hits_in_subsets]
    false_events = [events[e] for e in false_in_subset]
    latencies = [hit_latency(p, e, stream, received, timing, end_step) for p, e in hits]
    parts = ("total_ms", "detector_ms", "chunk_wait_ms", "send_lag_ms", "daemon_ms", "transport_ms")
    columns = {name: [float(getattr(h, name)) for h in latencies] for name in parts}
    played = len(positives)
    median_ms = _percentile_ms(columns["total_ms"], 50)
    return {
        "aligned": cutoff_seq is None,
        "scored_until_s": round(
            (len(stream.samples) if cutoff_seq is None else int(stream.chunk_starts[cutoff_seq])) / timing.rate_hz, 1
        ),
        "played": played,
        "played_in_stream": len(stream.layout.keyword),
        "detected": len(hits),
        "missed": played - len(hits),
        "false_events": len(false_events),
        "median_ms": median_ms,
        "p90_ms": _percentile_ms(columns["total_ms"], 90),
        "max_ms": round(max(columns["total_ms"]), 1) if latencies else None,
        "target_median_ms": TARGET_MEDIAN_MS,
        "target_met": median_ms is not None and median_ms <= TARGET_MEDIAN_MS,
        "median_parts_ms": {name.removesuffix("_ms"): _percentile_ms(columns[name], 50) for name in parts[1:]},
        "chunks": len(stream.chunk_ends),
        "chunks_answered": len(received.daemon_ms_by_seq),
        **_health(stream, received, timing.rate_hz),
        "statuses": sorted({str(s.get("code")) for s in received.statuses}),
        "hits": [
            {
                "clip": stream.names[h.positive],
                "keyword": h.keyword,
                **{name: round(getattr(h, name), 2) for name in parts},
            }
            for h in latencies
        ],
        "false_event_steps": [received.event_steps[e] for e in false_events],
    }


def run_keyword_latency(model: Path, options: LatencyOptions) -> dict[str, Any]:
    """Start a daemon on `model`, play the stream in real time through it, and report (one JSON-able dict)."""
    if not model.is_file():
        raise ConfigError(f"bench keyword-latency: model {model} not found (pass --model)")
    if (options.noise_dir is None) != (options.snr_db is None):
        raise ConfigError("--noise and --snr-db go together: give both or neither")
    timing = model_timing(model)
    stream = build_stream(options, timing)
    load_before = os.getloadavg()
    started_s = time.monotonic()
    with DaemonProcess(ours(model)) as daemon:
        received = play(
            stream, daemon.ingest, daemon.publish, rate_hz=timing.rate_hz, tail_s=options.tolerance_after_s + 0.5
        )
    wall_s = time.monotonic() - started_s
    report = summarise(stream, received, timing, options.tolerance_after_s)
    predicted = offline_events(model, stream, timing)
    same = (
        predicted.steps.tolist() == received.event_steps
        and [timing.keywords[k] for k in predicted.keywords.tolist()] == received.event_labels
    )
    return {
        "model": str(model),
        "keywords": timing.keywords,
        "thresholds": dict(zip(timing.keywords, timing.params.thresholds, strict=True)),
        "chunk_ms": options.chunk_ms,
        "audio_s": round(len(stream.samples) / timing.rate_hz, 1),
        "wall_s": round(wall_s, 1),
        "negatives": str(options.negatives_dir) if options.negatives_dir else f"noise floor {NOISE_FLOOR_DBFS} dBFS",
        "snr_db": options.snr_db,
        "min_gap_s": options.min_gap_s,
        "tolerance_after_s": options.tolerance_after_s,
        "seed": options.seed,
        **report,
        "offline_events": len(predicted.steps),
        "offline_events_equal": same,
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {_cpu_name()}",
    }


def describe(report: dict[str, Any]) -> str:
    """A few human-readable lines of the report."""
    parts = report["median_parts_ms"]
    return "\n".join(
        [
            f"{report['detected']} of {report['played']} keywords detected through the daemon "
            f"({report['missed']} missed, {report['false_events']} false events), {report['chunk_ms']:g} ms chunks, "
            f"{report['audio_s']:g} s of audio played in real time",
            f"latency from the keyword's end to the event at the subscriber: median {report['median_ms']} ms, "
            f"p90 {report['p90_ms']} ms, max {report['max_ms']} ms "
            f"(target median <= {report['target_median_ms']:g} ms: {'met' if report['target_met'] else 'NOT met'})",
            f"median parts: detector {parts['detector']} ms (stream time), chunk wait {parts['chunk_wait']} ms, "
            f"send lag {parts['send_lag']} ms, daemon {parts['daemon']} ms, transport {parts['transport']} ms",
            f"chunks answered {report['chunks_answered']}/{report['chunks']}, statuses {report['statuses']}, "
            f"send lag p99 {report['send_lag_p99_ms']} ms, daemon events equal to the offline Pipeline's: "
            f"{report['offline_events_equal']}",
            *(
                []
                if report["aligned"]
                else [
                    f"WARNING: a chunk was dropped or not answered in line (the machine or daemon fell behind); "
                    f"steps after it no longer match the audio: only the first {report['scored_until_s']} s "
                    f"({report['played']} of {report['played_in_stream']} keywords) are scored"
                ]
            ),
        ]
    )


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
