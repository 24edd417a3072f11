"""Streaming sensor frontend (kind "sensor"): channel selection, per-channel normalisation, stateful resampling.

Parameters come from the model's `streamer.frontend` metadata:

    {"kind": "sensor",
     "sample_rate_hz": 50,                 # the model's step rate: one feature row per 1/sample_rate_hz
     "channels": 6,                        # channels per frame the producer sends
     "channel_order": ["ax", ..., "wz"],   # the model's features, in order, by channel name
     "input_channels": [...],              # optional: names of the producer's columns (default: channel_order)
     "mean": [...], "std": [...],          # per feature, training statistics: features = (x - mean) / std
     "int16_scale": 0.001,                 # optional: units per count; without it int16 payloads are refused
     "resample_zeros": 8,                  # optional: windowed-sinc half width in zero crossings
     "max_fill_s": 0.5}                    # optional: gap policy, see `bridge_gap`

A stream whose rate differs from the model's is resampled by an exact polyphase windowed-sinc filter (resample.py)
with its history carried per stream, so any chunking of a stream gives the same features, bit for bit, as one push
of the whole recording (`sensor_offline`). A stream at the model's rate is not filtered at all (no delay).
Every stream keeps the rate of its first chunk; a chunk at another rate, with the wrong channel count, an
unsupported dtype or a non-finite value is refused with ChunkError, before any stream is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.errors import ChunkError, ModelError, StreamError
from streamer.frontend.resample import PolyphaseResampler, ResamplerState, upsampling_refusal

Chunks = Mapping[str, tuple[np.ndarray, int]]  # stream id → (samples [frames, channels], rate_hz)
DEFAULT_MAX_FILL_S = 0.5
MAX_INPUT_RATE_HZ = 100_000


@dataclass(frozen=True)
class SensorParams:
    """The validated `streamer.frontend` parameters of a sensor model."""

    sample_rate_hz: int
    channels: int
    columns: np.ndarray  # index into the producer's frame for each model feature
    mean: np.ndarray  # float64 [features]
    std: np.ndarray  # float64 [features]
    int16_scale: float | None
    resample_zeros: int
    max_fill_s: float

    @classmethod
    def parse(cls, params: Mapping[str, Any], feature_dim: int) -> SensorParams:
        """Validate metadata; a model whose metadata is inconsistent is a ModelError."""
        where = "sensor frontend metadata"
        rate = params.get("sample_rate_hz")
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            raise ModelError(f"{where}: sample_rate_hz is {rate!r}, expected a positive integer")
        order = params.get("channel_order")
        if not isinstance(order, list) or len(order) != feature_dim or not all(isinstance(c, str) for c in order):
            raise ModelError(f"{where}: channel_order is {order!r}, expected {feature_dim} channel names")
        inputs = params.get("input_channels", order)
        channels = params.get("channels", len(inputs) if isinstance(inputs, list) else None)
        if not isinstance(inputs, list) or not isinstance(channels, int) or len(inputs) != channels:
            raise ModelError(
                f"{where}: input_channels {inputs!r} and channels {channels!r} disagree; "
                "expected a list of `channels` names"
            )
        missing = [name for name in order if name not in inputs]
        if missing:
            raise ModelError(f"{where}: channel_order names {missing} not among the input channels {inputs}")
        mean = _vector(params.get("mean", [0.0] * feature_dim), feature_dim, "mean")
        std = _vector(params.get("std", [1.0] * feature_dim), feature_dim, "std")
        if np.any(std <= 0):
            raise ModelError(f"{where}: std {std.tolist()} must be positive")
        scale = params.get("int16_scale")
        if scale is not None and not (isinstance(scale, int | float) and scale > 0):
            raise ModelError(f"{where}: int16_scale is {scale!r}, expected a positive number")
        zeros = params.get("resample_zeros", 8)
        if not isinstance(zeros, int) or not 1 <= zeros <= 64:
            raise ModelError(f"{where}: resample_zeros is {zeros!r}, expected an integer in 1..64")
        fill = params.get("max_fill_s", DEFAULT_MAX_FILL_S)
        if not isinstance(fill, int | float) or fill < 0:
            raise ModelError(f"{where}: max_fill_s is {fill!r}, expected a number ≥ 0")
        return cls(
            sample_rate_hz=rate,
            channels=channels,
            columns=np.array([inputs.index(name) for name in order], dtype=np.intp),
            mean=mean,
            std=std,
            int16_scale=None if scale is None else float(scale),
            resample_zeros=zeros,
            max_fill_s=float(fill),
        )


def _vector(value: Any, length: int, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"sensor frontend metadata: {name} is not a list of numbers ({exc})") from exc
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise ModelError(f"sensor frontend metadata: {name} has shape {array.shape}, expected {length} finite numbers")
    return array


@dataclass(frozen=True)
class _Prepared:
    """A checked, normalised chunk waiting to be committed: float64 frames (for the resampler) and float32 views."""

    stream_id: str
    rate_hz: int
    frames: np.ndarray
    features: np.ndarray


@dataclass
class _Stream:
    """Per-stream state: the rate fixed by the first chunk, the last normalised frame, the resampler history."""

    rate_hz: int
    last_frame: np.ndarray | None = None
    resampler: ResamplerState | None = None


class SensorFrontend:
    """Raw sensor frames in, normalised feature rows at the model's rate out, per stream."""

    kind = "sensor"

    def __init__(self, params: Mapping[str, Any], feature_dim: int) -> None:
        self.params = SensorParams.parse(params, feature_dim)
        self.feature_dim = feature_dim
        self._streams: dict[str, _Stream] = {}
        self._resamplers: dict[int, PolyphaseResampler] = {}

    @property
    def sample_rate_hz(self) -> int:
        return self.params.sample_rate_hz

    @property
    def channels(self) -> int:
        return self.params.channels

    @property
    def step_period_s(self) -> float:
        return 1.0 / self.params.sample_rate_hz

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    def push(self, chunks: Chunks) -> dict[str, np.ndarray]:
        """Features float32 [steps, features] for each stream; all chunks are validated before any is used."""
        prepared, errors = self._prepare(chunks)
        if errors:
            raise next(iter(errors.values()))
        return self._commit(prepared)

    def push_report(self, chunks: Chunks) -> tuple[dict[str, np.ndarray], dict[str, StreamError]]:
        """Features for the good chunks and a ChunkError per bad one; a bad chunk leaves its stream untouched."""
        prepared, errors = self._prepare(chunks)
        return self._commit(prepared), errors

    def reset(self, stream_id: str) -> bool:
        """Forget a stream's history (its rate too); True if it was known."""
        return self._streams.pop(stream_id, None) is not None

    def end(self, stream_id: str) -> bool:
        """The stream is over: drop its state (a resampler's last, not yet complete, outputs are not emitted)."""
        return self._streams.pop(stream_id, None) is not None

    def save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Every stream's rate, last frame and resampler history, for a snapshot: restored, a stream continues
        exactly (resampled ones too), see `load_state`."""
        streams = list(self._streams.values())
        empty = np.zeros((0, self.feature_dim))
        histories = [s.resampler.history if s.resampler is not None else empty for s in streams]
        header = {
            "kind": self.kind,
            "streams": list(self._streams),
            "rates_hz": [s.rate_hz for s in streams],
            "resampler": [
                None if s.resampler is None else [s.resampler.first, s.resampler.received, s.resampler.next_output]
                for s in streams
            ],
        }
        arrays = {
            "last_frames": np.array(
                [s.last_frame if s.last_frame is not None else np.full(self.feature_dim, np.nan) for s in streams]
            ).reshape(len(streams), self.feature_dim),
            "histories": np.concatenate([empty, *histories]),
            "history_lengths": np.array([len(h) for h in histories], dtype=np.int64),
        }
        return header, arrays

    def load_state(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Replace every stream's state with a snapshot's (from `save_state`); ValueError if it does not fit."""
        ids, rates, resamplers = header["streams"], header["rates_hz"], header["resampler"]
        last_frames, lengths = arrays["last_frames"], arrays["history_lengths"]
        if header.get("kind") != self.kind or not len(ids) == len(rates) == len(resamplers) == len(lengths):
            raise ValueError("frontend state is not a sensor frontend's, or its lists disagree")
        if last_frames.shape != (len(ids), self.feature_dim):
            raise ValueError(f"last frames have shape {last_frames.shape}, expected ({len(ids)}, {self.feature_dim})")
        ends = np.cumsum(lengths).tolist()
        streams: dict[str, _Stream] = {}
        for index, stream_id in enumerate(ids):
            frame = last_frames[index]
            stream = _Stream(rate_hz=int(rates[index]), last_frame=None if np.isnan(frame).all() else frame.copy())
            if resamplers[index] is not None:
                first, received, next_output = (int(v) for v in resamplers[index])
                history = arrays["histories"][ends[index] - lengths[index] : ends[index]].astype(np.float64)
                stream.resampler = ResamplerState(history, first, received, next_output)
            streams[stream_id] = stream
        self._streams = streams

    def bridge_gap(self, stream_id: str, missing_s: float) -> np.ndarray | None:
        """Gap policy: a hole of up to `max_fill_s` is filled by holding the last frame, which keeps step indices
        equal to stream time × rate; a longer hole resets the stream's frontend state and returns None, telling the
        caller to reset the model state too (an RNN fed across a long hole is worse than a fresh start)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.last_frame is None:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        if not (missing_s >= 0 and np.isfinite(missing_s)):
            raise ChunkError(stream_id, f"gap of {missing_s!r} s: expected a finite duration ≥ 0")
        if missing_s > self.params.max_fill_s:
            self.reset(stream_id)
            return None
        held = np.repeat(stream.last_frame[None, :], round(missing_s * stream.rate_hz), axis=0)
        if stream.rate_hz == self.params.sample_rate_hz:
            return held.astype(np.float32)
        return self._resample(stream, held)

    def _prepare(self, chunks: Chunks) -> tuple[list[_Prepared], dict[str, StreamError]]:
        """Check every chunk, then normalise all good ones as one block (one numpy pass, not one per stream)."""
        checked: list[tuple[str, np.ndarray, int]] = []
        errors: dict[str, StreamError] = {}
        for stream_id, (samples, rate_hz) in chunks.items():
            try:
                checked.append((stream_id, self._check(stream_id, samples, rate_hz), int(rate_hz)))
            except ChunkError as exc:
                errors[stream_id] = exc
        block = np.concatenate([values for _, values, _ in checked]) if checked else np.zeros((0, self.channels))
        if not np.isfinite(block).all():  # rare: name the culprits, normalise the rest
            for stream_id, values, _ in checked:
                bad = np.argwhere(~np.isfinite(values))
                if len(bad):
                    frame, channel = bad[0]
                    message = f"non-finite value {values[frame, channel]} at frame {frame}, channel {channel}"
                    errors[stream_id] = ChunkError(stream_id, message)
            checked = [item for item in checked if item[0] not in errors]
            block = np.concatenate([values for _, values, _ in checked]) if checked else block[:0]
        normalised = (block.astype(np.float64)[:, self.params.columns] - self.params.mean) / self.params.std
        as_float32 = normalised.astype(np.float32)
        prepared, start = [], 0
        for stream_id, values, rate_hz in checked:
            end = start + len(values)
            prepared.append(_Prepared(stream_id, rate_hz, normalised[start:end], as_float32[start:end]))
            start = end
        return prepared, errors

    def _check(self, stream_id: str, samples: np.ndarray, rate_hz: int) -> np.ndarray:
        """The chunk as [frames, channels] float32/float64 (int16 scaled); ChunkError says what is wrong and what
        is valid. Finiteness is checked on the whole block by `_prepare`."""
        known = self._streams.get(stream_id)
        if known is None or known.rate_hz != rate_hz:
            self._check_rate(stream_id, rate_hz, known)
        samples = np.asarray(samples)
        if samples.ndim == 1 and self.params.channels == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] != self.params.channels:
            raise ChunkError(
                stream_id, f"samples have shape {samples.shape}, expected [frames, {self.params.channels}] channels"
            )
        if samples.dtype == np.float32 or samples.dtype == np.float64:
            return samples
        if samples.dtype != np.int16:
            raise ChunkError(stream_id, f"samples of dtype {samples.dtype}, expected float32 or int16")
        if self.params.int16_scale is None:
            raise ChunkError(
                stream_id, "int16 samples, but this model has no int16_scale in its metadata: send float32"
            )
        return samples.astype(np.float64) * self.params.int16_scale

    def _check_rate(self, stream_id: str, rate_hz: Any, known: _Stream | None) -> None:
        if (
            isinstance(rate_hz, bool)
            or not isinstance(rate_hz, int | np.integer)
            or not 0 < rate_hz <= MAX_INPUT_RATE_HZ
        ):
            raise ChunkError(stream_id, f"rate_hz is {rate_hz!r}, expected an integer in 1..{MAX_INPUT_RATE_HZ}")
        refusal = upsampling_refusal(int(rate_hz), self.params.sample_rate_hz)
        if refusal is not None:
            raise ChunkError(stream_id, refusal)
        if known is not None:
            raise ChunkError(
                stream_id,
                f"rate {rate_hz} Hz differs from this stream's first chunk ({known.rate_hz} Hz); "
                "end the stream before changing its rate",
            )
        if rate_hz != self.params.sample_rate_hz:
            try:
                self._resampler(int(rate_hz))
            except ValueError as exc:
                raise ChunkError(stream_id, str(exc)) from exc

    def _commit(self, prepared: list[_Prepared]) -> dict[str, np.ndarray]:
        features = {}
        for item in prepared:
            stream = self._streams.get(item.stream_id)
            if stream is None:
                stream = self._streams[item.stream_id] = _Stream(rate_hz=item.rate_hz)
            if len(item.frames):
                stream.last_frame = item.frames[-1]
            if stream.rate_hz == self.params.sample_rate_hz:
                features[item.stream_id] = item.features
            else:
                features[item.stream_id] = self._resample(stream, item.frames)
        return features

    def _resample(self, stream: _Stream, frames: np.ndarray) -> np.ndarray:
        resampler = self._resampler(stream.rate_hz)
        if stream.resampler is None:
            if not len(frames):
                return np.zeros((0, self.feature_dim), dtype=np.float32)
            stream.resampler = resampler.start(frames[0])
        return resampler.push(stream.resampler, frames).astype(np.float32)

    def _resampler(self, rate_hz: int) -> PolyphaseResampler:
        resampler = self._resamplers.get(rate_hz)
        if resampler is None:
            resampler = PolyphaseResampler(rate_hz, self.params.sample_rate_hz, self.params.resample_zeros)
            self._resamplers[rate_hz] = resampler
        return resampler


def sensor_offline(samples: np.ndarray, rate_hz: int, params: Mapping[str, Any], feature_dim: int) -> np.ndarray:
    """Features of a whole recording in one go: the reference that every chunking of the stream must equal."""
    return SensorFrontend(params, feature_dim).push({"offline": (samples, rate_hz)})["offline"]
