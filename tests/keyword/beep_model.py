"""A keyword model whose answers are known, for end-to-end tests: it says "beep" while the sound is loud.

`write_beep_rig` exports it with the real exporter (log-mel frontend, detection metadata) into a folder together
with a `positives/beep/` directory of tone clips: what `streamer eval-keyword` and `streamer bench keyword-latency`
read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from streamer.frontend.logmel import logmel_offline
from streamer.frontend.melspec import LogMelParams
from streamer.model.export import export_module

RATE_HZ = 16000
DETECTION = {"threshold": 0.5, "smoothing_steps": 1, "patience_steps": 2, "refractory_s": 0.5}


class LoudnessKeyword(nn.Module):
    """ "beep" when the total mel energy (log) is over `level`: a stand-in model whose events we can predict."""

    def __init__(self, n_mels: int, level: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(n_mels, 4, 1, batch_first=True)  # carried, unused: the contract wants a state
        self.level = level

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.rnn(x, h)
        loud = 4.0 * (torch.logsumexp(x, dim=-1, keepdim=True) - self.level) + 0.0 * y[..., :1]
        return torch.softmax(torch.cat([-loud, loud], dim=-1), dim=-1), h


def tone(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A faded tone of `seconds` between 0.1 s of silence on each side (float32, 16 kHz)."""
    t_s = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    beep = 0.05 * np.sin(2 * np.pi * rng.uniform(500, 2000) * t_s) * np.hanning(len(t_s)) ** 0.25  # no clicks
    silence = np.zeros(int(0.1 * RATE_HZ))
    return np.concatenate([silence, beep, silence]).astype(np.float32)


def write_beep_rig(root: Path, rng: np.random.Generator, quiet: np.ndarray, tone_s: float, positives: int) -> None:
    """`root/model.onnx` (threshold halfway between `quiet` and a tone, in log mel energy) and
    `root/positives/beep/{i}.wav`."""
    params = LogMelParams()

    def energy(samples: np.ndarray) -> float:
        return float(np.log(np.exp(logmel_offline(samples, params).astype(np.float64)).sum(axis=1)).mean())

    level = (energy(quiet) + energy(tone(rng, tone_s)[2400:-2400])) / 2
    torch.manual_seed(0)
    export_module(
        LoudnessKeyword(params.n_mels, level),
        root / "model.onnx",
        features=params.n_mels,
        labels=["_background", "beep"],
        scores="probabilities",
        frontend=params.to_dict(),
        extra_metadata={"streamer.detection": DETECTION},
    )
    (root / "positives" / "beep").mkdir(parents=True)
    for i in range(positives):
        sf.write(root / "positives" / "beep" / f"{i}.wav", tone(rng, tone_s), RATE_HZ)
