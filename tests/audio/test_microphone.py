"""Microphone capture through the PulseAudio virtual microphone: bit-exact capture, predictions equal to the same
audio from a file, overflow accounting, and reconnection after a stall."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile
from audio_helpers import sweep_signal

from streamer.pipeline import Pipeline
from streamer.sources.microphone import MicrophoneConfig, MicrophoneSource

pytestmark = pytest.mark.audio


class StatusLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def __call__(self, code: str, message: str) -> None:
        with self.changed:
            self.entries.append((code, message))
            self.changed.notify_all()

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.entries]

    def wait_for(self, code: str, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: code in self.codes, timeout=timeout_s)


def capture(mic: MicrophoneSource, frames: int, timeout_s: float = 10.0) -> list[np.ndarray]:
    blocks, got, deadline = [], 0, time.monotonic() + timeout_s
    while got < frames and time.monotonic() < deadline:
        block = mic.read(timeout_s=0.5)
        if block is not None:
            blocks.append(block)
            got += len(block)
    assert got >= frames, f"captured {got} of {frames} frames in {timeout_s} s"
    return blocks


TRAILER = np.zeros(1600, np.int16)  # PulseAudio holds back the last partial fragment until more audio comes


def writer(virtual_mic, samples: np.ndarray) -> threading.Thread:
    padded = np.concatenate([samples, TRAILER])
    thread = threading.Thread(target=virtual_mic.write, args=(padded,), daemon=True)
    thread.start()
    return thread


def test_microphone_predictions_equal_file_predictions(virtual_mic, logmel_model, tmp_path):
    x = sweep_signal(2.0, seed=4)
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, x, 16000, subtype="PCM_16")
    from_file, file_rate_hz = soundfile.read(wav, dtype="int16")
    file_pipe = Pipeline(logmel_model)
    file_scores = np.concatenate(
        [file_pipe.push({"file": from_file[i : i + 1600]}, rate_hz=file_rate_hz)["file"] for i in range(0, 32000, 1600)]
    )
    status = StatusLog()
    pipe = Pipeline(logmel_model)
    config = MicrophoneConfig(device="pulse", stall_ms=5000)
    with MicrophoneSource(config, preferred_rate_hz=pipe.sample_rate_hz, on_status=status) as mic:
        assert (mic.sample_rate_hz, mic.channels) == (16000, 1)
        thread = writer(virtual_mic, x)
        blocks = capture(mic, len(x))
        mic_scores = np.concatenate([pipe.push({"mic": b}, rate_hz=mic.sample_rate_hz)["mic"] for b in blocks])
        thread.join(timeout=10)
    captured = np.concatenate(blocks)
    assert captured.dtype == np.int16 and captured.shape[1] == 1
    np.testing.assert_array_equal(captured[: len(x), 0], x)  # the capture itself is bit-exact
    assert len(mic_scores) >= len(file_scores) == 198
    np.testing.assert_array_equal(mic_scores[: len(file_scores)], file_scores)
    assert mic.stats.dropped_blocks == 0 and status.codes == []


def test_full_queue_drops_newest_blocks_and_reports_overflow(virtual_mic):
    status = StatusLog()
    x = sweep_signal(0.5, seed=5)
    config = MicrophoneConfig(device="pulse", block_ms=10, queue_blocks=3, stall_ms=5000)
    with MicrophoneSource(config, preferred_rate_hz=16000, on_status=status) as mic:
        writer(virtual_mic, x).join(timeout=10)
        assert status.wait_for("overflow", timeout_s=5), status.entries
        kept = [mic.read(timeout_s=1) for _ in range(3)]
    assert mic.stats.dropped_blocks > 0 and mic.stats.blocks == 3
    assert "consumer is slower" in dict(status.entries)["overflow"]
    np.testing.assert_array_equal(np.concatenate(kept)[:, 0], x[:480])  # the oldest blocks are the ones kept


def test_stall_is_reported_and_the_device_reopened(virtual_mic):
    status = StatusLog()
    config = MicrophoneConfig(device="pulse", stall_ms=400, reconnect_min_s=0.05, reconnect_max_s=0.2)
    with MicrophoneSource(config, preferred_rate_hz=16000, on_status=status) as mic:
        first = sweep_signal(0.2, seed=6)
        writer(virtual_mic, first)
        np.testing.assert_array_equal(np.concatenate(capture(mic, len(first)))[: len(first), 0], first)
        # Nobody writes now: the pipe source delivers no callbacks, which is how a dead device looks.
        # (Audio written while the device is closed is lost, as it would be from a real microphone.)
        assert status.wait_for("reconnected", timeout_s=10), status.entries
        assert status.codes[0] == "stalled" and "no audio from" in status.entries[0][1]
        second = sweep_signal(0.3, seed=7)
        writer(virtual_mic, second)
        # The reopened stream may first deliver what was left of the trailer of silence written before the stall.
        again = np.concatenate(capture(mic, len(second)))[:, 0]
        start = int(np.flatnonzero(again)[0])
        if len(again) < start + len(second):
            again = np.concatenate([again, *(b[:, 0] for b in capture(mic, start + len(second) - len(again)))])
    assert mic.stats.stalls >= 1 and mic.stats.reconnects >= 1
    assert start <= len(TRAILER) and second[0] != 0
    np.testing.assert_array_equal(again[start : start + len(second)], second)  # exact again after the reopen


def test_two_microphones_are_two_streams(virtual_mic, logmel_model):
    x = sweep_signal(0.5, seed=8)
    pipe = Pipeline(logmel_model)
    config = MicrophoneConfig(device="pulse", stall_ms=5000)
    with (
        MicrophoneSource(config, preferred_rate_hz=16000) as left,
        MicrophoneSource(config, preferred_rate_hz=16000) as right,
    ):
        writer(virtual_mic, x)  # the sound server hands the same source to both captures
        captured = {"left": capture(left, len(x)), "right": capture(right, len(x))}
    scores: dict[str, list[np.ndarray]] = {"left": [], "right": []}
    for i in range(max(len(blocks) for blocks in captured.values())):
        out = pipe.push({name: blocks[i] for name, blocks in captured.items() if i < len(blocks)})
        for name, value in out.items():
            scores[name].append(value)
    expected = Pipeline(logmel_model).push({"file": x})["file"]
    for name in ("left", "right"):
        np.testing.assert_array_equal(np.concatenate(captured[name])[: len(x), 0], x)
        np.testing.assert_array_equal(np.concatenate(scores[name])[: len(expected)], expected)
