"""Waveform frontend (kind "waveform"): the audio itself, cut into fixed frames, one frame per model step.

For models that compute their own features inside the graph (e.g. a mel spectrogram and a frozen speech
embedding, `streamer.train.keyword.embedding`). Metadata:

    {"kind": "waveform", "sample_rate_hz": 16000, "frame_samples": 1280, "channel": null}

Per stream exactly as the log-mel frontend: int16 → float32 in [-1, 1), channel selection or average, a soxr
stream resampler to the model's rate, the samples short of a whole frame carried to the next chunk; features
[T, frame_samples] are frames k·frame_samples … (k + 1)·frame_samples, so any chunking gives the same frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.errors import ModelError
from streamer.frontend.logmel import FramedAudioFrontend, frame_count, frame_view, to_mono_float32


@dataclass(frozen=True)
class WaveformParams:
    """The `streamer.frontend` metadata of a waveform model."""

    sample_rate_hz: int = 16000
    frame_samples: int = 1280
    channel: int | None = None  # input channel to use; None averages all channels

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> WaveformParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known - {"kind"})
        if unknown:
            raise ModelError(f"waveform frontend: unknown parameter(s) {unknown}; this version knows {sorted(known)}")
        made = cls(**{k: v for k, v in params.items() if k in known})
        for name in ("sample_rate_hz", "frame_samples"):
            value = getattr(made, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelError(f"waveform frontend: {name}={value!r}, expected a positive integer")
        if made.channel is not None and (not isinstance(made.channel, int) or made.channel < 0):
            raise ModelError(f"waveform frontend: channel={made.channel!r}, expected null or an integer ≥ 0")
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "waveform", **dataclasses.asdict(self)}

    @property
    def win_samples(self) -> int:
        return self.frame_samples

    @property
    def hop_samples(self) -> int:
        return self.frame_samples

    @property
    def win_ms(self) -> float:
        return 1000.0 * self.frame_samples / self.sample_rate_hz

    @property
    def hop_ms(self) -> float:
        return self.win_ms

    @property
    def step_period_s(self) -> float:
        return self.frame_samples / self.sample_rate_hz


def _copy_frames(frames: np.ndarray) -> np.ndarray:
    """The frames as their own float32 array (the framing hands over a view of its working buffer)."""
    return np.array(frames, dtype=np.float32)


def waveform_offline(samples: np.ndarray, params: WaveformParams) -> np.ndarray:
    """The offline reference: frames [T, frame_samples] of a whole signal at the model's rate."""
    mono = to_mono_float32(samples, params.channel)
    count = frame_count(len(mono), params.frame_samples, params.frame_samples)
    if count == 0:
        return np.zeros((0, params.frame_samples), dtype=np.float32)
    return _copy_frames(frame_view(mono, params.frame_samples, params.frame_samples, count))


class WaveformFrontend(FramedAudioFrontend):
    """Raw audio frames for many streams at once; see the module docstring."""

    kind = "waveform"

    def __init__(self, params: Mapping[str, Any], feature_dim: int) -> None:
        spec = WaveformParams.from_dict(dict(params))
        if spec.frame_samples != feature_dim:
            raise ModelError(
                f"waveform frontend: frame_samples={spec.frame_samples} but the model takes {feature_dim} "
                "features per step"
            )
        super().__init__(spec, _copy_frames, feature_dim)
