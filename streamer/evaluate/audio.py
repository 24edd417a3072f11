"""Audio files for evaluation: loading at the model's rate, finding where speech is inside a clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from streamer.errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def audio_files(folder: Path) -> list[Path]:
    """Every wav/flac/ogg under `folder`, sorted (the order is part of the evaluation's reproducibility)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a directory of audio files")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load(path: Path, rate_hz: int) -> np.ndarray:
    """Mono float32 at `rate_hz` (channels averaged, resampled with soxr)."""
    try:
        samples, file_rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ConfigError(f"{path}: cannot read audio ({exc}); wav, flac and ogg are supported") from exc
    mono = samples.mean(axis=1)
    if file_rate_hz != rate_hz:
        mono = soxr.resample(mono, file_rate_hz, rate_hz)
    return np.ascontiguousarray(mono, dtype=np.float32)


def active_span(clip: np.ndarray, rate_hz: int, threshold_db: float = -40.0) -> tuple[int, int]:
    """[start, end) samples of the part louder than `threshold_db` below the clip's loudest 10 ms frame."""
    frame = max(1, rate_hz // 100)
    usable = len(clip) // frame * frame
    if usable == 0:
        return 0, len(clip)
    energy = np.sqrt(np.mean(np.square(clip[:usable].reshape(-1, frame), dtype=np.float64), axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > threshold_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * frame), int(min(len(clip), (loud[-1] + 1) * frame))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))
