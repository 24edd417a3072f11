"""Audio augmentation for keyword training: gain, speed, synthetic reverberation, band-limiting, random EQ, SNR
mixing."""

from __future__ import annotations

import numpy as np
import soxr

SAMPLE_RATE_HZ = 16000


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def change_speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, like a tape), by resampling."""
    if abs(factor - 1.0) < 1e-3:
        return clip
    return np.asarray(soxr.resample(clip, SAMPLE_RATE_HZ * factor, SAMPLE_RATE_HZ), dtype=np.float32)


def synthetic_rir(rng: np.random.Generator, rt60_s: float, direct_to_reverb_db: float) -> np.ndarray:
    """An exponentially decaying noise tail behind a unit direct path (a cheap, common room model)."""
    length = max(1, int(rt60_s * SAMPLE_RATE_HZ))
    t_s = np.arange(length) / SAMPLE_RATE_HZ
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t_s / rt60_s)  # -60 dB at rt60
    predelay = int(rng.uniform(0.002, 0.01) * SAMPLE_RATE_HZ)
    tail[:predelay] = 0.0
    tail *= 10 ** (-direct_to_reverb_db / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    return tail.astype(np.float32)


def convolve(clip: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Linear convolution by FFT, truncated to len(clip) + len(impulse) - 1."""
    size = len(clip) + len(impulse) - 1
    n_fft = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(clip, n_fft) * np.fft.rfft(impulse, n_fft), n_fft)[:size]
    return out.astype(np.float32)


def reverberate(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rir = synthetic_rir(rng, rt60_s=rng.uniform(0.15, 0.9), direct_to_reverb_db=rng.uniform(-3.0, 12.0))
    wet = convolve(clip, rir)
    return wet * (rms(clip) / rms(wet))


def band_limit(clip: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Keep `low_hz`..`high_hz` with gentle (raised-cosine, ~1/4 octave) edges: cheap mics, phones, speakers."""
    spectrum = np.fft.rfft(clip)
    freqs_hz = np.fft.rfftfreq(len(clip), 1 / SAMPLE_RATE_HZ)
    gain = np.ones_like(freqs_hz)
    low_edge = np.clip((freqs_hz - low_hz / 1.2) / (low_hz * 0.2 / 1.2 + 1e-9), 0, 1)
    high_edge = np.clip((high_hz * 1.2 - freqs_hz) / (high_hz * 0.2 + 1e-9), 0, 1)
    gain *= 0.5 - 0.5 * np.cos(np.pi * low_edge)
    gain *= 0.5 - 0.5 * np.cos(np.pi * high_edge)
    return np.fft.irfft(spectrum * gain, len(clip)).astype(np.float32)


def random_eq(clip: np.ndarray, rng: np.random.Generator, max_db: float = 8.0, bands: int = 4) -> np.ndarray:
    """A smooth random colouring (another voice's spectral envelope, another microphone): the gain in dB is a sum of
    `bands` cosines over log frequency (50 Hz to 8 kHz), scaled so its largest excursion is up to `max_db`."""
    spectrum = np.fft.rfft(clip)
    freqs_hz = np.fft.rfftfreq(len(clip), 1 / SAMPLE_RATE_HZ)
    position = np.log2(np.maximum(freqs_hz, 50.0) / 50.0) / np.log2(8000.0 / 50.0)  # 0..1
    gain_db = np.zeros_like(freqs_hz)
    for k in range(1, bands + 1):
        gain_db += rng.uniform(-1.0, 1.0) * np.cos(np.pi * k * position + rng.uniform(0.0, 2 * np.pi))
    gain_db *= rng.uniform(0.3, 1.0) * max_db / (np.abs(gain_db).max() + 1e-9)
    return np.fft.irfft(spectrum * 10 ** (gain_db / 20), len(clip)).astype(np.float32)


def augment_clip(clip: np.ndarray, rng: np.random.Generator, eq_probability: float = 0.0) -> np.ndarray:
    """The per-utterance chain: speed 0.8–1.25× (formants and pitch move too), reverb (p 0.5), band-limiting (p 0.3),
    random EQ (p `eq_probability`; at 0 no random number is drawn for it, so older streams are reproduced)."""
    clip = change_speed(clip, float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))))  # like another vocal tract
    if rng.random() < 0.5:
        clip = reverberate(clip, rng)
    if rng.random() < 0.3:
        clip = band_limit(clip, low_hz=float(rng.uniform(60, 400)), high_hz=float(rng.uniform(3000, 7500)))
    if eq_probability > 0 and rng.random() < eq_probability:
        clip = random_eq(clip, rng)
    return clip


def scale_to_snr(noise: np.ndarray, speech_rms: float, snr_db: float) -> np.ndarray:
    """Scale `noise` so that speech_rms / rms(noise) is `snr_db`."""
    return noise * (speech_rms / (rms(noise) * 10 ** (snr_db / 20)))
