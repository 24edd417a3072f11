"""Log-mel parameters, filterbank and the per-frame spectral kernel shared by the streaming and offline paths."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.errors import ModelError

try:  # scipy's pocketfft runs several rows per SIMD pass: ~3x faster than numpy.fft for [N, 512] here
    from scipy.fft import rfft as _rfft

    FFT_BACKEND = "scipy.fft"
except ImportError:  # pragma: no cover - exercised only where scipy is absent
    from numpy.fft import rfft as _rfft

    FFT_BACKEND = "numpy.fft"

WINDOWS = ("hann", "hamming")
MEL_SCALES = ("htk", "slaney")


@dataclass(frozen=True)
class LogMelParams:
    """The `streamer.frontend` metadata of a log-mel model; every field that changes the features is here."""

    sample_rate_hz: int = 16000  # the model's rate; input at other rates is resampled to it
    win_ms: float = 25.0  # analysis window length
    hop_ms: float = 10.0  # one feature frame (one model step) per hop
    n_fft: int = 512  # FFT length; the window is zero-padded at its end up to n_fft
    n_mels: int = 40  # mel bands = features per step
    f_min_hz: float = 20.0  # lowest mel filter edge
    f_max_hz: float = 7600.0  # highest mel filter edge (≤ sample_rate_hz / 2)
    log_floor: float = 1e-6  # features = log(max(mel power, log_floor))
    window: str = "hann"  # periodic Hann (torch.hann_window) or periodic Hamming
    mel_scale: str = "htk"  # "htk": 2595·log10(1 + f/700) (torchaudio's default); "slaney": librosa's default
    channel: int | None = None  # input channel to use; None averages all channels

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> LogMelParams:
        """Validate metadata (the "kind" key is ignored); unknown keys are refused, never silently ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known - {"kind"})
        if unknown:
            raise ModelError(
                f"logmel frontend: unknown parameter(s) {unknown}; this version knows {sorted(known)} "
                "(a model must never be fed features it was not trained on)"
            )
        values = {k: v for k, v in params.items() if k in known}
        try:
            made = cls(**values)
        except TypeError as exc:
            raise ModelError(f"logmel frontend: {exc}") from exc
        made.validate()
        return made

    def to_dict(self) -> dict[str, Any]:
        """The metadata dict, with "kind": "logmel" first (what the exporter should write)."""
        return {"kind": "logmel", **dataclasses.asdict(self)}

    @property
    def win_samples(self) -> int:
        return round(self.sample_rate_hz * self.win_ms / 1000.0)

    @property
    def hop_samples(self) -> int:
        return round(self.sample_rate_hz * self.hop_ms / 1000.0)

    @property
    def step_period_s(self) -> float:
        """Seconds of audio per feature frame (the hop, after rounding to whole samples)."""
        return self.hop_samples / self.sample_rate_hz

    def validate(self) -> None:
        """Raise ModelError naming the first field out of range and what is valid."""
        checks: list[tuple[bool, str]] = [
            (
                isinstance(self.sample_rate_hz, int) and self.sample_rate_hz > 0,
                f"sample_rate_hz={self.sample_rate_hz!r}, expected a positive integer",
            ),
            (self.hop_ms > 0 and self.hop_samples >= 1, f"hop_ms={self.hop_ms!r}, expected ≥ 1 sample"),
            (self.win_ms > 0 and self.win_samples >= 2, f"win_ms={self.win_ms!r}, expected ≥ 2 samples"),
            (
                isinstance(self.n_fft, int) and self.n_fft >= self.win_samples,
                f"n_fft={self.n_fft!r}, expected an integer ≥ the window ({self.win_samples} samples)",
            ),
            (isinstance(self.n_mels, int) and self.n_mels >= 1, f"n_mels={self.n_mels!r}, expected ≥ 1"),
            (
                0 <= self.f_min_hz < self.f_max_hz <= self.sample_rate_hz / 2,
                f"f_min_hz={self.f_min_hz!r}, f_max_hz={self.f_max_hz!r}: expected "
                f"0 ≤ f_min_hz < f_max_hz ≤ {self.sample_rate_hz / 2} (half the sample rate)",
            ),
            (
                self.log_floor > 0 and math.isfinite(self.log_floor),
                f"log_floor={self.log_floor!r}, expected a positive number",
            ),
            (self.window in WINDOWS, f"window={self.window!r}, expected one of {list(WINDOWS)}"),
            (self.mel_scale in MEL_SCALES, f"mel_scale={self.mel_scale!r}, expected one of {list(MEL_SCALES)}"),
            (
                self.channel is None or (isinstance(self.channel, int) and self.channel >= 0),
                f"channel={self.channel!r}, expected null (average all channels) or an index ≥ 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ModelError(f"logmel frontend: {message}")


def hz_to_mel(freq_hz: np.ndarray, mel_scale: str) -> np.ndarray:
    """Hz → mel, HTK (2595·log10(1 + f/700)) or Slaney (linear below 1 kHz, logarithmic above)."""
    freq_hz = np.asarray(freq_hz, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + freq_hz / 700.0)
    mels = freq_hz / (200.0 / 3)
    log_step = math.log(6.4) / 27.0
    high = freq_hz >= 1000.0
    return np.where(high, 15.0 + np.log(np.maximum(freq_hz, 1e-9) / 1000.0) / log_step, mels)


def mel_to_hz(mels: np.ndarray, mel_scale: str) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    log_step = math.log(6.4) / 27.0
    return np.where(mels >= 15.0, 1000.0 * np.exp(log_step * (mels - 15.0)), mels * (200.0 / 3))


def mel_edges_hz(params: LogMelParams) -> np.ndarray:
    """The n_mels + 2 filter edges in Hz, equally spaced in mel; filter k peaks at edge k + 1."""
    edge_mels = np.linspace(
        hz_to_mel(np.array(params.f_min_hz), params.mel_scale),
        hz_to_mel(np.array(params.f_max_hz), params.mel_scale),
        params.n_mels + 2,
    )
    return mel_to_hz(edge_mels, params.mel_scale)


def mel_filterbank(params: LogMelParams) -> np.ndarray:
    """Triangular mel filters, float32 [n_fft // 2 + 1, n_mels], unnormalised (peak 1), as torchaudio's
    `melscale_fbanks(..., norm=None)`: edges equally spaced in mel between f_min_hz and f_max_hz."""
    n_bins = params.n_fft // 2 + 1
    bin_hz = np.linspace(0.0, params.sample_rate_hz / 2, n_bins)
    edge_hz = mel_edges_hz(params)
    edge_gap_hz = np.diff(edge_hz)
    slopes = edge_hz[None, :] - bin_hz[:, None]  # [n_bins, n_mels + 2]
    rising = -slopes[:, :-2] / edge_gap_hz[:-1]
    falling = slopes[:, 2:] / edge_gap_hz[1:]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def analysis_window(params: LogMelParams) -> np.ndarray:
    """Periodic window of win_samples (torch.hann_window / torch.hamming_window with periodic=True)."""
    n = np.arange(params.win_samples, dtype=np.float64)
    phase = 2.0 * np.pi * n / params.win_samples
    if params.window == "hann":
        return (0.5 - 0.5 * np.cos(phase)).astype(np.float32)
    return (0.54 - 0.46 * np.cos(phase)).astype(np.float32)


class LogMelKernel:
    """Frames [N, win_samples] → log-mel [N, n_mels] float32: window, one rfft, power, mel, log.

    Every step computes each row on its own, with the same operations whatever N is, so a frame's features
    do not depend on which other frames (or streams) share the call: streaming equals offline bit for bit.
    That is why the mel projection is a stack of one-row products (`[N, 1, K] @ [K, M]`, one BLAS call per
    row) and not one [N, K] @ [K, M] GEMM: BLAS changes its summation order with N (measured here).
    Not thread-safe: it reuses one zero-padded work buffer between calls.
    """

    def __init__(self, params: LogMelParams) -> None:
        self.params = params
        self.window = analysis_window(params)
        filterbank = mel_filterbank(params)
        used = np.flatnonzero(filterbank.any(axis=1))
        # Only the FFT bins some filter uses take part in the product (the same bins for every row).
        self.first_bin = int(used[0]) if used.size else 0
        self.end_bin = int(used[-1]) + 1 if used.size else 1
        self.filterbank = np.ascontiguousarray(filterbank[self.first_bin : self.end_bin])
        self.log_floor = np.float32(params.log_floor)
        self._padded = np.zeros((0, params.n_fft), dtype=np.float32)  # columns ≥ win stay zero

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        count, win = frames.shape
        if count > len(self._padded):
            self._padded = np.zeros((max(count, 2 * len(self._padded)), self.params.n_fft), dtype=np.float32)
        padded = self._padded[:count]
        np.multiply(frames, self.window, out=padded[:, :win])
        spectrum = _rfft(padded, axis=1)[:, self.first_bin : self.end_bin]
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
        mel = np.matmul(power[:, None, :], self.filterbank)[:, 0, :]
        np.maximum(mel, self.log_floor, out=mel)
        np.log(mel, out=mel)
        return mel
