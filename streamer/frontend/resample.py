"""Exact stateful rational resampling for sensor streams: a polyphase windowed-sinc filter whose per-stream
history makes any chunking of a stream give the same output, bit for bit, as one push of the whole recording.
Also the bound on upsampling that every frontend applies (`MAX_UPSAMPLING`)."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np

ROLLOFF = 0.9  # pass band edge as a fraction of the lower Nyquist frequency
KAISER_BETA = 8.0  # window shape: ~80 dB stop band
MAX_PHASES = 1000
MAX_TAPS = 4096
OUTPUTS_PER_BLOCK = 256  # bounds the gathered window array on long pushes
# Every frontend (audio and sensor) refuses input more than this many times below the model's rate. Resampling up
# multiplies the samples: without a bound one small chunk claiming rate_hz=1 becomes thousands of times as many
# rows (gigabytes from a 4 MB payload). Real sources are not that far below their model: 8 kHz telephony into a
# 16 kHz model is 2x, a 10 Hz IMU into a 50 Hz model 5x.
MAX_UPSAMPLING = 8


def upsampling_refusal(rate_hz: int, model_rate_hz: int, what: str = "input") -> str | None:
    """Why input at rate_hz is refused for a model at model_rate_hz (below ceil(model / MAX_UPSAMPLING)), or None."""
    lowest_hz = -(-model_rate_hz // MAX_UPSAMPLING)
    if rate_hz >= lowest_hz:
        return None
    return (
        f"rate_hz={rate_hz}: {what} below {lowest_hz} Hz is refused for this {model_rate_hz} Hz model "
        f"(at most {MAX_UPSAMPLING}x upsampling)"
    )


@dataclass
class ResamplerState:
    """One stream's resampler history: input frames from absolute index `first`, next output index."""

    history: np.ndarray  # float64 [frames, channels]
    first: int
    received: int = 0
    next_output: int = 0


class PolyphaseResampler:
    """Exact rational resampler: output k is the windowed-sinc interpolation of the input at time k·down/up input
    samples; frames before the first are taken equal to it. Each output is a fixed-order sum over a fixed window,
    so results do not depend on how the input was chunked. Latency: `half_taps` input frames."""

    def __init__(self, rate_in_hz: int, rate_out_hz: int, zeros: int) -> None:
        common = gcd(rate_in_hz, rate_out_hz)
        self.up, self.down = rate_out_hz // common, rate_in_hz // common
        cutoff = 0.5 * min(1.0, self.up / self.down) * ROLLOFF  # cycles per input frame
        half_width = zeros / (2 * cutoff)  # input frames
        self.half_taps = int(np.ceil(half_width))
        if self.up > MAX_PHASES or 2 * self.half_taps > MAX_TAPS:
            raise ValueError(
                f"resampling {rate_in_hz} Hz to {rate_out_hz} Hz needs {self.up} phases × {2 * self.half_taps} taps; "
                f"at most {MAX_PHASES} × {MAX_TAPS} are supported"
            )
        self.offsets = np.arange(-self.half_taps + 1, self.half_taps + 1)
        t = np.arange(self.up)[:, None] / self.up - self.offsets[None, :]  # [phase, tap] time from tap to output
        window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - (t / half_width) ** 2, 0, None))) / np.i0(KAISER_BETA)
        taps = 2 * cutoff * np.sinc(2 * cutoff * t) * np.where(np.abs(t) <= half_width, window, 0.0)
        self.taps = taps / taps.sum(axis=1, keepdims=True)  # unit gain at DC: a constant input stays constant

    def start(self, first_frame: np.ndarray) -> ResamplerState:
        pad = np.repeat(first_frame[None, :], self.half_taps, axis=0)
        return ResamplerState(history=pad, first=-self.half_taps)

    def push(self, state: ResamplerState, frames: np.ndarray) -> np.ndarray:
        """Outputs whose whole window has arrived, float64 [outputs, channels]; advances `state`."""
        state.history = np.concatenate([state.history, frames])
        state.received += len(frames)
        last_usable = state.received - 1 - self.half_taps  # largest window centre (floor) with all taps present
        end = -((-(last_usable + 1) * self.up) // self.down) if last_usable >= 0 else 0
        outputs = [
            self._outputs(state, np.arange(block, min(block + OUTPUTS_PER_BLOCK, end)))
            for block in range(state.next_output, end, OUTPUTS_PER_BLOCK)
        ]
        state.next_output = max(state.next_output, end)
        keep_from = (state.next_output * self.down) // self.up - self.half_taps + 1
        state.history = state.history[keep_from - state.first :]
        state.first = keep_from
        if not outputs:
            return np.zeros((0, frames.shape[1]), dtype=np.float64)
        return np.concatenate(outputs)

    def _outputs(self, state: ResamplerState, indices: np.ndarray) -> np.ndarray:
        centre = (indices * self.down) // self.up
        phase = (indices * self.down) % self.up
        rows = (centre - state.first)[:, None] + self.offsets[None, :]  # [outputs, taps]
        windows = np.ascontiguousarray(state.history[rows].transpose(0, 2, 1))  # [outputs, channels, taps]
        weighted = windows * self.taps[phase][:, None, :]
        return np.add.reduce(weighted, axis=2)  # contiguous last-axis sum: same order for every chunking
