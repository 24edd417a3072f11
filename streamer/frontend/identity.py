"""Identity frontend (no `streamer.frontend` metadata): each payload frame already is one step's features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from streamer.errors import ChunkError, StreamError


class IdentityFrontend:
    """Payload [frames, channels] float32 with channels == feature_dim → the same array as features [T, F]."""

    kind = "identity"

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim
        self.channels: int | None = feature_dim
        self.sample_rate_hz: int | None = None  # frames are steps; any rate the producer sends
        self.step_period_s: float | None = None  # unknown: one step per payload frame

    def reset(self, stream_id: str) -> bool:
        """Nothing is carried between chunks, so there is never anything to forget."""
        return False

    def end(self, stream_id: str) -> bool:
        return False

    def save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Nothing is carried, so a snapshot holds nothing of this frontend's."""
        return {"kind": self.kind}, {}

    def load_state(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if header.get("kind") != self.kind:
            raise ValueError(f"frontend state is a {header.get('kind')!r} frontend's, expected identity")

    def push(self, chunks: Mapping[str, tuple[np.ndarray, int]]) -> dict[str, np.ndarray]:
        """The chunks as float32 [T, F]; raises ChunkError for the first bad one."""
        features, errors = self.push_report(chunks)
        if errors:
            raise next(iter(errors.values()))
        return features

    def push_report(
        self, chunks: Mapping[str, tuple[np.ndarray, int]]
    ) -> tuple[dict[str, np.ndarray], dict[str, StreamError]]:
        features: dict[str, np.ndarray] = {}
        errors: dict[str, StreamError] = {}
        for stream_id, (samples, _rate_hz) in chunks.items():
            try:
                features[stream_id] = self._check(np.asarray(samples))
            except ValueError as exc:
                errors[stream_id] = ChunkError(stream_id, str(exc))
        return features, errors

    def _check(self, frames: np.ndarray) -> np.ndarray:
        if frames.ndim != 2 or frames.shape[1] != self.feature_dim:
            raise ValueError(
                f"payload has shape {frames.shape}, expected [frames, {self.feature_dim}] features "
                "(the model has no streamer.frontend metadata, so payload frames are its features)"
            )
        if frames.dtype not in (np.float32, np.float64):
            raise ValueError(f"payload has dtype {frames.dtype}, expected float32 features")
        features = np.ascontiguousarray(frames, dtype=np.float32)
        if not np.isfinite(features).all():
            raise ValueError("features contain NaN or infinity")
        return features
