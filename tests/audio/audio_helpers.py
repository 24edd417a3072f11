"""Helpers shared by the audio tests (a module of its own: conftest files are not importable by name)."""

from __future__ import annotations

import numpy as np

LABELS = ["_background", "yes", "no"]


def sweep_signal(seconds: float, rate_hz: int = 16000, seed: int = 0) -> np.ndarray:
    """Tones sweeping over noise, int16 mono [frames]: enough structure that every mel band moves."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    x = 0.3 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.03 * rng.standard_normal(len(t))
    return np.clip(x * 32767, -32768, 32767).astype(np.int16)
