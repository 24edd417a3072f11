"""Frontends turn a stream's raw samples into the model's features; `build_frontend` picks one from metadata.

Kinds: "logmel" (audio, `logmel.LogMelFrontend`), "waveform" (audio frames for models that compute their own
features, `waveform.WaveformFrontend`), "sensor" (`sensor.SensorFrontend`), and no metadata at all
(`identity.IdentityFrontend`: the payload frames are the features).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from streamer.errors import ChunkError, ModelError, StreamError
from streamer.frontend.identity import IdentityFrontend

Chunks = Mapping[str, tuple[np.ndarray, int]]  # stream id → (samples [frames, channels], rate_hz)

# kind → "module:Class"; each class is built as Class(params: dict, feature_dim: int), imported on first use.
KINDS: dict[str, str] = {
    "logmel": "streamer.frontend.logmel:LogMelFrontend",
    "sensor": "streamer.frontend.sensor:SensorFrontend",
    "waveform": "streamer.frontend.waveform:WaveformFrontend",
}
AUDIO_KINDS = ("logmel", "waveform")  # the kinds that read audio (a microphone, keyword evaluation)


@runtime_checkable
class Frontend(Protocol):
    """Samples in, features out, for many streams per call; carries each stream's partial frames.

    `push` is all-or-nothing: if any chunk is bad it raises ChunkError for that stream and consumes nothing.
    A frontend may also offer `push_report(chunks) -> (features, {id: StreamError})`, which processes the
    good chunks and reports the bad ones; `push_each` uses it where present.
    """

    @property
    def sample_rate_hz(self) -> int | None:
        """The rate features are computed at; input at other rates is resampled (None: any rate)."""

    @property
    def channels(self) -> int | None:
        """Input channels expected (None: any)."""

    @property
    def step_period_s(self) -> float | None:
        """Seconds of input per feature frame (None: unknown)."""

    def push(self, chunks: Chunks) -> dict[str, np.ndarray]: ...

    def reset(self, stream_id: str) -> bool: ...

    def end(self, stream_id: str) -> bool: ...


def build_frontend(spec: Mapping[str, Any] | None, feature_dim: int) -> Frontend:
    """The frontend a model's `streamer.frontend` metadata asks for; ModelError if it cannot be built."""
    if spec is None:
        return IdentityFrontend(feature_dim)
    kind = spec.get("kind")
    target = KINDS.get(kind) if isinstance(kind, str) else None
    if target is None:
        raise ModelError(f"streamer.frontend: unknown kind {kind!r}; known kinds: {sorted(KINDS)}")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModelError(f"streamer.frontend: kind {kind!r} needs {module_name}, which is not installed") from exc
    frontend_class = getattr(module, class_name)
    params = {k: v for k, v in spec.items() if k != "kind"}
    frontend: Frontend = frontend_class(params, feature_dim)
    return frontend


def audio_framing(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(window, hop) in samples at the model's rate, from an audio frontend's metadata (kind in AUDIO_KINDS)."""
    if spec.get("kind") == "waveform":
        from streamer.frontend.waveform import WaveformParams

        frame = WaveformParams.from_dict(spec).frame_samples
        return frame, frame
    if spec.get("kind") == "logmel":
        from streamer.frontend.melspec import LogMelParams

        params = LogMelParams.from_dict(dict(spec))
        return params.win_samples, params.hop_samples
    raise ModelError(f"streamer.frontend: kind {spec.get('kind')!r} does not read audio; audio kinds: {AUDIO_KINDS}")


def push_each(frontend: Frontend, chunks: Chunks) -> tuple[dict[str, np.ndarray], dict[str, StreamError]]:
    """Features for the good chunks, a StreamError per bad one: one bad stream never holds up the others."""
    report = getattr(frontend, "push_report", None)
    if report is not None:
        features, errors = report(chunks)
        return features, errors
    pending = dict(chunks)
    errors = {}
    while pending:  # `push` consumes nothing when it raises, so drop the bad stream and try the rest again
        try:
            return frontend.push(pending), errors
        except ChunkError as exc:
            if exc.stream_id not in pending:
                raise
            errors[exc.stream_id] = exc
            del pending[exc.stream_id]
    return {}, errors


__all__ = [
    "AUDIO_KINDS",
    "KINDS",
    "Chunks",
    "Frontend",
    "IdentityFrontend",
    "audio_framing",
    "build_frontend",
    "push_each",
]
