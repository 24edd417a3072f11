"""eval-keyword: stream positives spliced into negatives through the real Pipeline, then score it as a DET curve."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from streamer.detect import DetectionParams
from streamer.errors import ConfigError, ModelError
from streamer.evaluate import audio
from streamer.evaluate.det import Outcome, Truth, hit_mask, operating_point, score, span_to_steps, sweep
from streamer.evaluate.events import EventTrack
from streamer.evaluate.intervals import poisson_rate, wilson
from streamer.evaluate.splice import Positive, SplicePlan, Splicer
from streamer.frontend import AUDIO_KINDS, audio_framing
from streamer.pipeline import Pipeline

FA_TARGETS_PER_HOUR = (0.5, 1.0)
STREAM_ID = "eval"


@dataclass(frozen=True)
class EvalOptions:
    """How the evaluation stream is made and scored (see docs/keywords.md)."""

    noise_dir: Path | None = None
    snr_db: float | None = None
    negative_hours: float | None = None  # loop the negatives (reshuffled) up to this many hours
    min_gap_s: float = 4.0
    level_dbfs: float | None = -26.0
    tolerance_after_s: float = 1.0
    chunk_ms: float = 1000.0
    seed: int = 0
    detection: Mapping[str, Any] = field(default_factory=dict)  # overrides of the model's streamer.detection
    progress: bool = True


def _label_folders(folder: Path, keywords: list[str]) -> dict[int, list[Path]]:
    """Positives: one sub-folder per keyword label (spaces may be written as '_'), or loose files for a
    single-keyword model."""
    found: dict[int, list[Path]] = {}
    names = {k: i for i, k in enumerate(keywords)} | {k.replace(" ", "_"): i for i, k in enumerate(keywords)}
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for sub in subfolders:
        if sub.name not in names:
            raise ConfigError(f"{sub}: no keyword of the model is called {sub.name!r}; its keywords are {keywords}")
        found[names[sub.name]] = audio.audio_files(sub)
    loose = [p for p in audio.audio_files(folder) if p.parent == folder]
    if loose:
        if len(keywords) != 1:
            raise ConfigError(
                f"{folder}: the model has {len(keywords)} keywords {keywords}; put each keyword's "
                "clips in a sub-folder named after it"
            )
        found.setdefault(0, []).extend(loose)
    if not any(found.values()):
        raise ConfigError(f"{folder}: no positive clips (wav/flac/ogg) found")
    return found


def _negatives(
    folder: Path, rate_hz: int, hours: float | None, rng: np.random.Generator
) -> tuple[list[np.ndarray], int]:
    loaded = [audio.load(p, rate_hz) for p in audio.audio_files(folder)]
    loaded = [x for x in loaded if len(x)]
    if not loaded:
        raise ConfigError(f"{folder}: no negative audio files (wav/flac/ogg) found")
    order = [loaded[i] for i in rng.permutation(len(loaded))]
    total = sum(len(x) for x in order)
    stream = list(order)
    while hours is not None and total < hours * 3600 * rate_hz:
        for i in rng.permutation(len(loaded)):  # loop: the same files again, in a new order
            stream.append(loaded[i])
            total += len(loaded[i])
    return stream, len(loaded)


def _run_pipeline(
    pipeline: Pipeline, splicer: Splicer, chunk_samples: int, rate_hz: int, show: bool
) -> tuple[np.ndarray, float]:
    total = splicer.layout().total_samples
    scores: list[np.ndarray] = []
    started = time.perf_counter()
    columns = (TextColumn("eval-keyword"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"), TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=True) as progress:
        task = progress.add_task("stream", total=total)
        for chunk in splicer.chunks(chunk_samples):
            scores.append(pipeline.push({STREAM_ID: chunk}, rate_hz=rate_hz)[STREAM_ID])
            progress.advance(task, len(chunk))
    return np.concatenate(scores), time.perf_counter() - started


def _ms(latencies_steps: np.ndarray, step_s: float, q: float) -> float | None:
    return round(float(np.percentile(latencies_steps, q)) * step_s * 1000, 1) if len(latencies_steps) else None


def _point(outcome: Outcome | None, step_s: float, negative_hours: float) -> dict[str, Any] | None:
    if outcome is None:
        return None
    frr_low, frr_high = wilson(outcome.misses, outcome.positives)
    fa_low, fa_high = poisson_rate(outcome.false_accepts, negative_hours)
    return {
        "threshold": outcome.thresholds[0],
        "frr": None if math.isnan(outcome.frr) else round(outcome.frr, 4),
        "frr_ci95": _interval(frr_low, frr_high, 4),
        "misses": outcome.misses,
        "false_accepts": outcome.false_accepts,
        "fa_per_hour": round(outcome.fa_per_hour, 3),
        "fa_per_hour_ci95": _interval(fa_low, fa_high, 3),
        "median_latency_ms": _ms(outcome.latencies_steps, step_s, 50),
        "p90_latency_ms": _ms(outcome.latencies_steps, step_s, 90),
    }


def evaluate(model: Path, positives_dir: Path, negatives_dir: Path, options: EvalOptions) -> dict[str, Any]:
    """The whole evaluation; returns the report (see docs/keywords.md for every field)."""
    pipeline = Pipeline(model)
    spec = pipeline.engine.spec
    frontend = spec.frontend or {}
    if frontend.get("kind") not in AUDIO_KINDS or pipeline.sample_rate_hz is None or pipeline.step_period_s is None:
        raise ModelError(
            f"{model}: eval-keyword needs an audio model (frontend logmel or waveform), "
            f"this one has frontend {frontend}"
        )
    rate_hz, step_s = pipeline.sample_rate_hz, pipeline.step_period_s
    win, hop = audio_framing(frontend)
    params = DetectionParams.resolve(
        spec.labels, spec.metadata, step_s, overrides=options.detection, scores_are_logits=spec.scores == "logits"
    )
    if params is None:
        params = DetectionParams.resolve(
            spec.labels,
            {"streamer.detection": "{}"},
            step_s,
            overrides=options.detection,
            scores_are_logits=spec.scores == "logits",
        )
    assert params is not None
    keywords = [spec.labels[k] for k in params.keywords]
    rng = np.random.default_rng(options.seed)
    positives = [
        Positive(k, str(p), audio.load(p, rate_hz))
        for k, paths in _label_folders(positives_dir, keywords).items()
        for p in paths
    ]
    negatives, negative_files = _negatives(negatives_dir, rate_hz, options.negative_hours, rng)
    noise = [audio.load(p, rate_hz) for p in audio.audio_files(options.noise_dir)] if options.noise_dir else []
    plan = SplicePlan(
        min_gap_s=options.min_gap_s, level_dbfs=options.level_dbfs, snr_db=options.snr_db, seed=options.seed
    )
    splicer = Splicer(positives, negatives, noise, plan, rate_hz)
    layout = splicer.layout()
    scores, wall_s = _run_pipeline(
        pipeline, splicer, round(options.chunk_ms * rate_hz / 1000), rate_hz, options.progress
    )

    start_step, end_step = span_to_steps(layout.start_sample, layout.end_sample, hop=hop, win=win)
    truth = Truth(layout.keyword, start_step, end_step)
    track = EventTrack(scores, params)
    negative_hours = layout.negative_samples / rate_hz / 3600
    tolerance = round(options.tolerance_after_s / step_s)
    curve = sweep(track, truth, negative_hours=negative_hours, tolerance_after_steps=tolerance)
    at = {target: operating_point(curve, target) for target in FA_TARGETS_PER_HOUR}
    default = score(track, truth, params.thresholds, negative_hours=negative_hours, tolerance_after_steps=tolerance)
    hits = hit_mask(track.events(params.thresholds), truth, tolerance_after_steps=tolerance)
    missed = sorted(
        str(Path(p.name).relative_to(positives_dir)) for p, hit in zip(splicer.positives, hits, strict=True) if not hit
    )
    per_keyword = {}
    for k, label in enumerate(keywords):
        mine = sweep(track, truth, negative_hours=negative_hours, tolerance_after_steps=tolerance, keywords=[k])
        per_keyword[label] = {
            "positives": int((truth.keyword == k).sum()),
            **{f"frr_at_{_key(t)}_fa_per_hour": _frr(operating_point(mine, t)) for t in FA_TARGETS_PER_HOUR},
            "default": _point(
                score(
                    track,
                    truth,
                    params.thresholds,
                    negative_hours=negative_hours,
                    tolerance_after_steps=tolerance,
                    keywords=[k],
                ),
                step_s,
                negative_hours,
            ),
            "det": [[round(o.fa_per_hour, 3), round(o.frr, 4)] for o in mine],
        }
    return {
        "model": str(model),
        "keywords": keywords,
        "negative_hours": round(negative_hours, 6),
        "negative_files": negative_files,
        "stream_hours": round(layout.total_samples / rate_hz / 3600, 6),
        "positives": len(positives),
        "snr_db": options.snr_db,
        "noise_files": len(noise),
        **{f"frr_at_{_key(t)}_fa_per_hour": _frr(at[t]) for t in FA_TARGETS_PER_HOUR},
        "thresholds": {f"{_key(t)}_fa_per_hour": _threshold(at[t]) for t in FA_TARGETS_PER_HOUR},
        "median_latency_ms": _ms(default.latencies_steps, step_s, 50),
        "operating_points": {
            f"{_key(t)}_fa_per_hour": _point(at[t], step_s, negative_hours) for t in FA_TARGETS_PER_HOUR
        },
        "default": {
            **(_point(default, step_s, negative_hours) or {}),
            "thresholds": dict(zip(keywords, params.thresholds, strict=True)),
        },
        "per_keyword": per_keyword,
        "missed_at_defaults": missed,
        "det": [
            {"threshold": o.thresholds[0], "frr": round(o.frr, 4), "fa_per_hour": round(o.fa_per_hour, 3)}
            for o in curve
        ],
        "detection": {
            "smoothing_steps": params.smoothing_steps,
            "patience_steps": params.patience_steps,
            "refractory_s": params.refractory_s,
        },
        "tolerance_after_s": options.tolerance_after_s,
        "latency": "stream time from the keyword's last loud sample to the step whose frame first holds it "
        "plus the steps until the event fired; processing and transport time not included",
        "seed": options.seed,
        "pipeline_seconds": round(wall_s, 2),
        "realtime_factor": round(layout.total_samples / rate_hz / max(wall_s, 1e-9), 1),
    }


def frr_text(point: Mapping[str, Any]) -> str:
    """An operating point's FRR for people: "36.3 % [31.9–41.0 %]" (its 95 % interval, where there is one)."""
    if point.get("frr") is None:
        return "n/a (no positives)"
    interval = point.get("frr_ci95")
    text = f"{100 * point['frr']:.1f} %"
    return f"{text} [{100 * interval[0]:.1f}–{100 * interval[1]:.1f} %]" if interval else text


def fa_per_hour_text(point: Mapping[str, Any]) -> str:
    """An operating point's false-accept rate for people: "0.5 FA/h [0.013–2.8]"."""
    interval = point.get("fa_per_hour_ci95")
    text = f"{point['fa_per_hour']:g} FA/h"
    return f"{text} [{interval[0]:.2g}–{interval[1]:.2g}]" if interval else text


def _interval(low: float, high: float, digits: int) -> list[float] | None:
    """None where there is nothing to count (no positives of a keyword): JSON has no NaN."""
    return None if math.isnan(low) else [round(low, digits), round(high, digits)]


def _key(target: float) -> str:
    return f"{target:g}".replace(".", "_")


def _threshold(outcome: Outcome | None) -> float | None:
    return outcome.thresholds[0] if outcome is not None else None


def _frr(outcome: Outcome | None) -> float | None:
    """None when no swept threshold reaches that false-accept rate (reported, never papered over)."""
    return round(outcome.frr, 4) if outcome is not None else None


def write_json(report: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")
