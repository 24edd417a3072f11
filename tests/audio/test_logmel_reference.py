"""The log-mel frontend against an independent reference: torch.stft and torchaudio's mel filterbank formula.

torchaudio itself is not installed here, so the reference filterbank is rebuilt in torch from torchaudio's
published `melscale_fbanks` (HTK scale, norm=None) and librosa's Slaney scale; both run in float64.
Our features then equal `torchaudio.transforms.MelSpectrogram(sample_rate, n_fft, win_length, hop_length, f_min,
f_max, n_mels, power=2, center=False, mel_scale="htk")` on the signal zero-padded by (n_fft - win) / 2 samples at
each end (torch centres a short window inside n_fft; we put it first), followed by log(max(mel, log_floor)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streamer.frontend.logmel import logmel_offline
from streamer.frontend.melspec import LogMelParams, hz_to_mel, mel_filterbank

FEATURE_ATOL = 2e-5  # float32 features vs a float64 reference, log domain (measured 6.9e-6 HTK, 2.1e-6 Slaney)


def reference_mel_scale(freq_hz: torch.Tensor, scale: str) -> torch.Tensor:
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq_hz / 700.0)
    linear = freq_hz * 3.0 / 200.0
    logarithmic = 15.0 + torch.log(freq_hz.clamp(min=1e-9) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(freq_hz >= 1000.0, logarithmic, linear)


def reference_inverse_mel(mels: torch.Tensor, scale: str) -> torch.Tensor:
    if scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    return torch.where(mels >= 15.0, 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mels - 15.0)), mels * 200.0 / 3.0)


def reference_filterbank(p: LogMelParams) -> torch.Tensor:
    """torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, None, scale)."""
    all_freqs = torch.linspace(0, p.sample_rate_hz // 2, p.n_fft // 2 + 1, dtype=torch.float64)
    m_min = reference_mel_scale(torch.tensor(p.f_min_hz, dtype=torch.float64), p.mel_scale)
    m_max = reference_mel_scale(torch.tensor(p.f_max_hz, dtype=torch.float64), p.mel_scale)
    f_pts = reference_inverse_mel(
        torch.linspace(float(m_min), float(m_max), p.n_mels + 2, dtype=torch.float64), p.mel_scale
    )
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.max(torch.zeros(1, dtype=torch.float64), torch.min(down, up))


def reference_logmel(x: np.ndarray, p: LogMelParams) -> np.ndarray:
    pad = (p.n_fft - p.win_samples) // 2
    signal = torch.nn.functional.pad(torch.from_numpy(x.astype(np.float64)), (pad, p.n_fft - p.win_samples - pad))
    window = torch.hann_window(p.win_samples, periodic=True, dtype=torch.float64)
    spectrum = torch.stft(signal, p.n_fft, p.hop_samples, p.win_samples, window, center=False, return_complex=True)
    power = spectrum.abs() ** 2  # [bins, frames]
    mel = power.T @ reference_filterbank(p)
    return torch.log(mel.clamp(min=p.log_floor)).numpy()


@pytest.mark.parametrize("scale", ["htk", "slaney"])
@pytest.mark.parametrize(
    ("rate_hz", "n_fft", "n_mels", "f_max_hz"),
    [(16000, 512, 40, 7600.0), (8000, 256, 23, 4000.0), (22050, 1024, 80, 11025.0)],
)
def test_filterbank_matches_torchaudio_formula(scale, rate_hz, n_fft, n_mels, f_max_hz):
    p = LogMelParams(sample_rate_hz=rate_hz, n_fft=n_fft, n_mels=n_mels, f_max_hz=f_max_hz, mel_scale=scale)
    ours = mel_filterbank(p)
    assert ours.shape == (n_fft // 2 + 1, n_mels) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_filterbank(p).numpy(), rtol=0, atol=1e-6)
    assert (ours.max(axis=0) > 0.5).all(), "every filter must catch at least one FFT bin"


def test_mel_scales_match_published_values():
    # HTK: 1000 Hz ≈ 1000 mel; Slaney (librosa.hz_to_mel): linear 3/200 per Hz below 1 kHz, 15 at 1 kHz.
    assert hz_to_mel(np.array(1000.0), "htk") == pytest.approx(999.9855, abs=1e-4)
    assert hz_to_mel(np.array(500.0), "slaney") == pytest.approx(7.5)
    assert hz_to_mel(np.array(1000.0), "slaney") == pytest.approx(15.0)
    assert hz_to_mel(np.array(4000.0), "slaney") == pytest.approx(15 + math.log(4) / (math.log(6.4) / 27))


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_features_match_torch_stft_reference(scale):
    rng = np.random.default_rng(11)
    t = np.arange(16000) / 16000.0
    x = (
        0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t**2) + 0.05 * rng.standard_normal(len(t))
    ).astype(np.float32)
    p = LogMelParams(mel_scale=scale)
    ours = logmel_offline(x, p)
    reference = reference_logmel(x, p)
    assert ours.shape == reference.shape == (98, 40)
    assert np.abs(ours - reference).max() <= FEATURE_ATOL
