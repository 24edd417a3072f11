"""Recorded audio from Debian packages (noise, music, real speech), loaded at 16 kHz and split by whole file."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from streamer.train.keyword.corpus import ASTERISK_TRANSCRIPTS, contains_keyword

SAMPLE_RATE_HZ = 16000
NOISE_GLOBS = (("/usr/share/sonic-pi/samples", "*.flac"), ("/usr/share/games/lincity-ng", "*.wav"))
MUSIC_GLOBS = (("/usr/share/asterisk/moh", "*.wav"), ("/usr/share/games/lincity-ng", "*.ogg"))
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
LICENCES = {
    "sonic-pi-samples": "CC0",
    "lincity-ng-data": "GPL-2+ / CC-BY-SA",
    "asterisk-moh-opsound-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-en-wav": "CC-BY-SA-3.0",
}


@dataclass(frozen=True)
class Recording:
    path: Path
    samples: np.ndarray  # 16 kHz mono float32


def heldout(path: Path, fraction: float) -> bool:
    """Whether a whole file belongs to the evaluation side: a stable hash of its name, not of its content."""
    digest = hashlib.sha256(path.name.encode()).digest()
    return digest[0] / 256 < fraction


def load_16k(path: Path) -> np.ndarray:
    samples, rate_hz = sf.read(str(path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate_hz != SAMPLE_RATE_HZ:
        mono = soxr.resample(mono, rate_hz, SAMPLE_RATE_HZ)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _files(globs: Iterable[tuple[str, str]]) -> list[Path]:
    return sorted(p for root, pattern in globs for p in Path(root).rglob(pattern))


def _load(paths: Sequence[Path], min_s: float) -> list[Recording]:
    out = []
    for path in paths:
        samples = load_16k(path)
        if len(samples) >= min_s * SAMPLE_RATE_HZ and np.abs(samples).max() > 1e-4:
            out.append(Recording(path, samples))
    return out


def noise(split: str, heldout_fraction: float = 0.25) -> list[Recording]:
    """Environmental noise and sound effects (sonic-pi, lincity) on `split` ("train" or "eval")."""
    paths = [p for p in _files(NOISE_GLOBS) if heldout(p, heldout_fraction) == (split == "eval")]
    return _load(paths, min_s=0.2)


def music(split: str) -> list[Recording]:
    """Music; the eval side holds out whole tracks (2 of the 5 asterisk tracks and 1 of the 3 lincity ones)."""
    paths = _files(MUSIC_GLOBS)
    eval_names = {"macroform-robot_dity.wav", "reno_project-system.wav"}
    eval_names.add(next((p.name for p in paths if p.suffix == ".ogg"), ""))
    chosen = [p for p in paths if (p.name in eval_names) == (split == "eval")]
    return _load(chosen, min_s=1.0)


def _transcripts() -> dict[str, str]:
    if not ASTERISK_TRANSCRIPTS.exists():
        return {}
    table = {}
    with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if ":" in line and not line.startswith(";"):
                name, text = line.split(":", 1)
                table[name.strip()] = text.strip()
    return table


def speech(split: str, keywords: Sequence[str], heldout_fraction: float = 0.5) -> list[Recording]:
    """Real recorded prompts (one female speaker, 8 kHz) whose transcript holds none of `keywords`."""
    if not SPEECH_DIR.exists():
        return []
    texts = _transcripts()
    chosen = []
    for path in sorted(SPEECH_DIR.rglob("*.wav")):
        key = str(path.relative_to(SPEECH_DIR).with_suffix(""))
        if path.parent.name == "silence" or contains_keyword(texts.get(key, ""), keywords):
            continue
        if heldout(path, heldout_fraction) == (split == "eval"):
            chosen.append(path)
    return _load(chosen, min_s=0.3)
