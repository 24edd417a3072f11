"""`streamer bench frontend`: log-mel cost per 10 ms frame, all streams in one push vs one push per stream.

Three ways over the same audio, timed round-robin (medians of CPU time of this process, all threads):
- batched: `LogMelFrontend.push` with every stream's chunk in one call (what the daemon does);
- per-stream: the same frontend, one `push` per stream (what a loop over streams does);
- naive: a textbook per-stream numpy log-mel (numpy.fft, one GEMM, no batching): the ANCHORS.md naive daemon.
Each chunk of `chunk_ms` gives every stream chunk_ms / hop_ms frames after the first push.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from streamer.bench.timing import interleaved_medians
from streamer.frontend.logmel import LogMelFrontend
from streamer.frontend.melspec import FFT_BACKEND, LogMelParams, analysis_window, mel_filterbank


@dataclass(frozen=True)
class FrontendBenchResult:
    streams: int
    chunk_ms: float
    rate_hz: int
    frames_per_push: float  # mean frames (all streams) per push
    batched_us_per_frame: float
    per_stream_us_per_frame: float
    naive_us_per_frame: float | None  # None where not measured (the naive baseline does not resample)
    fft_backend: str
    machine: str

    @property
    def speedup_vs_per_stream(self) -> float:
        return self.per_stream_us_per_frame / self.batched_us_per_frame

    @property
    def realtime_streams_per_core(self) -> float:
        """16 kHz streams one core can featurise in real time (100 frames/s each at a 10 ms hop)."""
        return 1e6 / (self.batched_us_per_frame * 100.0)

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "speedup_vs_per_stream": self.speedup_vs_per_stream,
            "realtime_streams_per_core": self.realtime_streams_per_core,
        }


class NaiveLogMel:
    """The straightforward per-stream log-mel: concatenate, frame, window, numpy rfft, power, GEMM, log."""

    def __init__(self, params: LogMelParams) -> None:
        self.params = params
        self.window = analysis_window(params)
        self.filterbank = mel_filterbank(params)
        self.tail = np.zeros(0, np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        p = self.params
        signal = np.concatenate([self.tail, chunk.astype(np.float32) / 32768.0])
        count = 0 if len(signal) < p.win_samples else 1 + (len(signal) - p.win_samples) // p.hop_samples
        frames = np.lib.stride_tricks.sliding_window_view(signal, p.win_samples)[:: p.hop_samples][:count]
        self.tail = signal[count * p.hop_samples :]
        power = np.abs(np.fft.rfft(frames * self.window, n=p.n_fft)) ** 2
        return np.log(np.maximum(power @ self.filterbank, p.log_floor))


def run_frontend_bench(streams: int, chunk_ms: float, rate_hz: int, rounds: int, seed: int = 0) -> FrontendBenchResult:
    params = LogMelParams()
    rng = np.random.default_rng(seed)
    chunk_frames = round(rate_hz * chunk_ms / 1000.0)
    chunks = {f"s{i}": (rng.normal(0, 3000, chunk_frames).astype(np.int16), rate_hz) for i in range(streams)}
    batched, per_stream = LogMelFrontend(params.to_dict(), 40), LogMelFrontend(params.to_dict(), 40)
    naive = {stream_id: NaiveLogMel(params) for stream_id in chunks}
    for _ in range(3):  # fill the tails (and resamplers) so each push yields its steady number of frames
        batched.push(chunks)
    # Through a resampler the frames per push vary a little: average them over several pushes.
    frames_per_push = sum(sum(len(f) for f in batched.push(chunks).values()) for _ in range(5)) / 5

    def run_batched() -> None:
        batched.push(chunks)

    def run_per_stream() -> None:
        for stream_id, chunk in chunks.items():
            per_stream.push({stream_id: chunk})

    def run_naive() -> None:
        for stream_id, (samples, _rate) in chunks.items():
            naive[stream_id].push(samples)

    runs: dict[str, Callable[[], object]] = {"batched": run_batched, "per_stream": run_per_stream}
    if rate_hz == params.sample_rate_hz:  # the naive baseline does not resample
        runs["naive"] = run_naive
    seconds = interleaved_medians(runs, rounds, per_round=3, clock=time.process_time)
    us = {name: s / frames_per_push * 1e6 for name, s in seconds.items()}
    return FrontendBenchResult(
        streams=streams,
        chunk_ms=chunk_ms,
        rate_hz=rate_hz,
        frames_per_push=frames_per_push,
        batched_us_per_frame=us["batched"],
        per_stream_us_per_frame=us["per_stream"],
        naive_us_per_frame=us.get("naive"),
        fft_backend=FFT_BACKEND,
        machine=f"{os.cpu_count()}-core {platform.machine()}, {platform.processor() or platform.system()}",
    )
