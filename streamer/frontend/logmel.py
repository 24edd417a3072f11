"""Streaming log-mel audio frontend (kind "logmel"): PCM at any rate and channel count in, exact features out.

Per stream: int16 → float32 in [-1, 1), channel selection or average, a soxr stream resampler to the model's
rate (created with the stream's first chunk), then framing with the carried sample tail. Frame k covers
resampled samples [k·hop, k·hop + win): no centre padding, so streaming equals `logmel_offline` exactly.
All frames of all streams in one `push` go through one `LogMelKernel` call (one rfft, one stacked product).
The per-stream framing is `FramedAudioFrontend`, which the waveform frontend shares with another kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import soxr

from streamer.errors import ChunkError, ModelError, StreamError
from streamer.frontend.melspec import LogMelKernel, LogMelParams
from streamer.frontend.resample import upsampling_refusal

INT16_SCALE = np.float32(1.0 / 32768.0)  # a power of two: the int16 → float32 conversion is exact


def to_mono_float32(samples: np.ndarray, channel: int | None) -> np.ndarray:
    """Samples [frames] or [frames, channels], int16 or float → float32 [frames]; ValueError says what is wrong."""
    samples = np.asarray(samples)
    if samples.ndim == 2 and samples.shape[1] == 1 and channel in (None, 0):
        samples = samples[:, 0]  # mono: convert the one column without a copy first
    if samples.ndim == 1:
        if channel not in (None, 0):
            raise ValueError(f"the model reads channel {channel} but the chunk has 1 channel(s)")
        return _to_float32(samples)
    if samples.ndim != 2:
        raise ValueError(f"samples have shape {samples.shape}, expected [frames, channels] or [frames]")
    if samples.shape[1] == 0:
        raise ValueError("samples have 0 channels")
    scaled = _to_float32(samples)
    if channel is not None:
        if channel >= scaled.shape[1]:
            raise ValueError(f"the model reads channel {channel} but the chunk has {scaled.shape[1]} channel(s)")
        return np.ascontiguousarray(scaled[:, channel])
    return np.ascontiguousarray(scaled.mean(axis=1, dtype=np.float32))


def _to_float32(samples: np.ndarray) -> np.ndarray:
    """int16 → float32 in [-1, 1) (exact), float → float32; refuses other dtypes and non-finite values."""
    if samples.dtype == np.int16:
        return np.multiply(samples, INT16_SCALE, dtype=np.float32)
    if samples.dtype in (np.float32, np.float64):
        scaled = np.ascontiguousarray(samples, dtype=np.float32)
        if not np.isfinite(scaled).all():
            raise ValueError("samples contain NaN or infinity")
        return scaled
    raise ValueError(f"samples have dtype {samples.dtype}, expected int16 or float32")


def check_rate(rate_hz: Any, model_rate_hz: int) -> int:
    """A sample rate must be an integer (numpy integers accepted) of at least model_rate_hz / MAX_UPSAMPLING."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | np.integer) or rate_hz <= 0:
        raise ValueError(f"rate_hz={rate_hz!r}, expected a positive integer")
    refusal = upsampling_refusal(int(rate_hz), model_rate_hz, what="audio")
    if refusal is not None:
        raise ValueError(refusal)
    return int(rate_hz)


def frame_count(samples: int, win: int, hop: int) -> int:
    """Frames in `samples` samples: frame k covers [k·hop, k·hop + win), so 1 + (samples - win) // hop, or 0."""
    return 0 if samples < win else 1 + (samples - win) // hop


def frame_view(signal: np.ndarray, win: int, hop: int, count: int) -> np.ndarray:
    """A view [count, win] (no copy) of a contiguous float32 signal: row k is signal[k·hop : k·hop + win]."""
    itemsize = signal.itemsize
    return np.ndarray((count, win), signal.dtype, buffer=signal, strides=(hop * itemsize, itemsize))


def logmel_offline(
    samples: np.ndarray, params: LogMelParams | Mapping[str, Any], *, rate_hz: int | None = None
) -> np.ndarray:
    """The offline reference: log-mel [T, n_mels] float32 of a whole signal.

    `samples` as for the streaming frontend ([frames] or [frames, channels], int16 or float). They are at the
    model's rate unless `rate_hz` says otherwise; then they are resampled first with `soxr.resample`.
    T = 1 + (len - win) // hop frames (0 when shorter than one window).
    """
    spec = params if isinstance(params, LogMelParams) else LogMelParams.from_dict(dict(params))
    mono = to_mono_float32(samples, spec.channel)
    if rate_hz is not None and check_rate(rate_hz, spec.sample_rate_hz) != spec.sample_rate_hz:
        mono = np.asarray(soxr.resample(mono, rate_hz, spec.sample_rate_hz), dtype=np.float32)
    win, hop = spec.win_samples, spec.hop_samples
    count = frame_count(len(mono), win, hop)
    if count == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    return LogMelKernel(spec)(frame_view(mono, win, hop, count))


@dataclass
class _StreamState:
    rate_hz: int
    resampler: soxr.ResampleStream | None
    tail: np.ndarray  # resampled samples not yet in a complete frame (fewer than win)


class Framing(Protocol):
    """How a framed-audio frontend cuts its input: the model's rate, window and hop in samples, channel."""

    @property
    def sample_rate_hz(self) -> int: ...

    @property
    def win_samples(self) -> int: ...

    @property
    def hop_samples(self) -> int: ...

    @property
    def step_period_s(self) -> float: ...

    @property
    def channel(self) -> int | None: ...


class FramedAudioFrontend:
    """Audio for many streams at once, cut into frames of `framing` and passed through `kernel` ([N, win] →
    [N, feature_dim]) in one call per push; see the module docstring. Subclasses name a kind and its params."""

    kind = "framed"

    def __init__(self, framing: Framing, kernel: Callable[[np.ndarray], np.ndarray], feature_dim: int) -> None:
        self.params = framing
        self.kernel = kernel
        self.sample_rate_hz: int = framing.sample_rate_hz
        self.channels: int | None = None  # any channel count: averaged, or `channel` selected
        self.step_period_s: float = framing.step_period_s
        self.feature_dim = feature_dim
        self._streams: dict[str, _StreamState] = {}

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    def reset(self, stream_id: str) -> bool:
        """Forget the stream's carried samples and resampler; its next chunk starts a new signal."""
        return self._streams.pop(stream_id, None) is not None

    def end(self, stream_id: str) -> bool:
        return self.reset(stream_id)

    def push(self, chunks: Mapping[str, tuple[np.ndarray, int]]) -> dict[str, np.ndarray]:
        """Features for every stream in `chunks`; raises ChunkError (and consumes nothing) if any chunk is bad."""
        uniform = self._push_uniform(chunks)
        if uniform is not None:
            return uniform
        prepared, errors = self._prepare(chunks)
        if errors:
            raise next(iter(errors.values()))
        return self._consume(prepared)

    def push_report(
        self, chunks: Mapping[str, tuple[np.ndarray, int]]
    ) -> tuple[dict[str, np.ndarray], dict[str, StreamError]]:
        """Features for the good chunks and a ChunkError per bad one; a bad chunk leaves its stream untouched."""
        uniform = self._push_uniform(chunks)
        if uniform is not None:
            return uniform, {}
        prepared, errors = self._prepare(chunks)
        return self._consume(prepared), errors

    def _push_uniform(self, chunks: Mapping[str, tuple[np.ndarray, int]]) -> dict[str, np.ndarray] | None:
        """The daemon's usual batch without a Python pass per stream, or None when the batch is not that: every
        chunk int16 mono of one length, at the model's rate, for a stream already open with a carried tail of one
        length. The same arithmetic as `_prepare` + `_consume` on a [streams, tail + chunk] block: the same bits."""
        if self.params.channel not in (None, 0) or len(chunks) < 2:
            return None
        rate_hz, get = self.sample_rate_hz, self._streams.get
        first_samples, _ = next(iter(chunks.values()))
        shape = getattr(first_samples, "shape", None)
        if shape is None or not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            return None
        states, samples_list = [], []
        for stream_id, (samples, rate) in chunks.items():
            state = get(stream_id)
            if (
                state is None
                or state.resampler is not None
                or type(rate) is not int
                or rate != rate_hz
                or type(samples) is not np.ndarray
                or samples.dtype != np.int16
                or samples.shape != shape
            ):
                return None
            states.append(state)
            samples_list.append(samples)
        tail_length = len(states[0].tail)
        if any(len(state.tail) != tail_length for state in states):
            return None
        win, hop = self.params.win_samples, self.params.hop_samples
        count, chunk_length = len(states), shape[0]
        length = tail_length + chunk_length
        frames_each = frame_count(length, win, hop)
        if frames_each == 0:
            return None
        signal = np.empty((count, length), dtype=np.float32)
        if tail_length:
            signal[:, :tail_length] = np.stack([state.tail for state in states])
        raw = np.concatenate(samples_list).reshape(count, chunk_length)
        np.multiply(raw, INT16_SCALE, out=signal[:, tail_length:], dtype=np.float32)
        itemsize = signal.itemsize
        frames = np.lib.stride_tricks.as_strided(
            signal, (count, frames_each, win), (length * itemsize, hop * itemsize, itemsize), writeable=False
        ).reshape(count * frames_each, win)
        features = self.kernel(frames)
        tails = signal[:, frames_each * hop :].copy()  # one block; each stream keeps its (contiguous) row
        out: dict[str, np.ndarray] = {}
        for index, (stream_id, state) in enumerate(zip(chunks, states, strict=True)):
            out[stream_id] = features[index * frames_each : (index + 1) * frames_each]
            state.tail = tails[index]
        return out

    def _prepare(
        self, chunks: Mapping[str, tuple[np.ndarray, int]]
    ) -> tuple[dict[str, tuple[np.ndarray, int]], dict[str, StreamError]]:
        prepared: dict[str, tuple[np.ndarray, int]] = {}
        errors: dict[str, StreamError] = {}
        for stream_id, (samples, rate_hz) in chunks.items():
            try:
                rate = check_rate(rate_hz, self.sample_rate_hz)
                state = self._streams.get(stream_id)
                if state is not None and state.rate_hz != rate:
                    raise ValueError(
                        f"rate changed from {state.rate_hz} Hz to {rate} Hz mid-stream; reset the stream first"
                    )
                prepared[stream_id] = (to_mono_float32(samples, self.params.channel), rate)
            except ValueError as exc:
                errors[stream_id] = ChunkError(stream_id, str(exc))
        return prepared, errors

    def _consume(self, prepared: Mapping[str, tuple[np.ndarray, int]]) -> dict[str, np.ndarray]:
        win, hop = self.params.win_samples, self.params.hop_samples
        out: dict[str, np.ndarray] = {}
        pieces: list[np.ndarray] = []
        framed: list[tuple[str, _StreamState, int, int, int]] = []  # id, state, offset, length, frames
        offset = 0
        for stream_id, (mono, rate) in prepared.items():
            state = self._streams.get(stream_id) or self._open(stream_id, rate)
            fresh = state.resampler.resample_chunk(mono) if state.resampler is not None else mono
            length = len(state.tail) + len(fresh)
            count = frame_count(length, win, hop)
            if count == 0:
                state.tail = np.concatenate((state.tail, fresh))
                out[stream_id] = np.zeros((0, self.feature_dim), dtype=np.float32)
                continue
            pieces += (state.tail, fresh)
            framed.append((stream_id, state, offset, length, count))
            offset += length
        if not framed:
            return out
        signal = np.concatenate(pieces)
        if len(framed) == 1:  # one stream: its frames are evenly spaced, a strided view needs no gather
            frames = frame_view(signal, win, hop, framed[0][4])
            first_row = np.zeros(1, dtype=np.int64)
        else:
            offsets = np.array([f[2] for f in framed], dtype=np.int64)
            counts = np.array([f[4] for f in framed], dtype=np.int64)
            first_row = np.cumsum(counts) - counts
            rows = np.arange(int(counts.sum()), dtype=np.int64)
            starts = np.repeat(offsets, counts) + hop * (rows - np.repeat(first_row, counts))
            frames = frame_view(signal, win, 1, len(signal) - win + 1)[starts]
        features = self.kernel(frames)
        for (stream_id, state, start, length, count), row in zip(framed, first_row.tolist(), strict=True):
            out[stream_id] = features[row : row + count]
            state.tail = signal[start + count * hop : start + length].copy()
        return out

    def save_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Every stream's carried samples and input rate, for a snapshot (see `load_state`)."""
        states = list(self._streams.values())
        header = {"kind": self.kind, "streams": list(self._streams), "rates_hz": [s.rate_hz for s in states]}
        tails = [s.tail for s in states]
        arrays = {
            "tails": np.concatenate(tails) if tails else np.zeros(0, np.float32),
            "tail_lengths": np.array([len(t) for t in tails], dtype=np.int64),
        }
        return header, arrays

    def load_state(self, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Replace all streams' state with a snapshot's. A stream at the model's rate continues exactly; one that
        is resampled gets a fresh resampler (soxr's internal history cannot be saved), so its next few ms differ."""
        ids, rates, lengths = header["streams"], header["rates_hz"], arrays["tail_lengths"]
        if header.get("kind") != self.kind or len(ids) != len(rates) or len(ids) != len(lengths):
            raise ValueError(f"frontend state is not a {self.kind} frontend's, or its lists disagree")
        ends = np.cumsum(lengths)
        self._streams = {}
        for stream_id, rate_hz, end, length in zip(ids, rates, ends.tolist(), lengths.tolist(), strict=True):
            state = self._open(stream_id, int(rate_hz))
            state.tail = np.array(arrays["tails"][end - length : end], dtype=np.float32)

    def _open(self, stream_id: str, rate_hz: int) -> _StreamState:
        resampler = None
        if rate_hz != self.sample_rate_hz:
            resampler = soxr.ResampleStream(rate_hz, self.sample_rate_hz, 1, dtype="float32")
        state = _StreamState(rate_hz, resampler, np.zeros(0, dtype=np.float32))
        self._streams[stream_id] = state
        return state


class LogMelFrontend(FramedAudioFrontend):
    """Log-mel features (kind "logmel"): `LogMelParams` framing, `LogMelKernel` per frame."""

    kind = "logmel"

    def __init__(self, params: Mapping[str, Any], feature_dim: int) -> None:
        spec = LogMelParams.from_dict(dict(params))
        if spec.n_mels != feature_dim:
            raise ModelError(
                f"logmel frontend: n_mels={spec.n_mels} but the model takes {feature_dim} features per step"
            )
        super().__init__(spec, LogMelKernel(spec), feature_dim)
        self.params: LogMelParams = spec
