"""`streamer wyoming` in a real process, spoken to by the `wyoming` package's own client (what Home Assistant uses):
describe, detections equal to an in-process Pipeline + Detector on the same chunks, not-detected, bad audio."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from beep_model import RATE_HZ, tone, write_beep_rig
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.wake import Detect

from streamer.daemon.config import load_config
from streamer.daemon.stepper import build_detector
from streamer.daemon.wyoming import pcm_samples
from streamer.pipeline import Pipeline

CHUNK = RATE_HZ // 10  # 100 ms per audio-chunk, as satellites send


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wyomingrig")
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(RATE_HZ * 5) * 10 ** (-70 / 20)).astype(np.float32)
    write_beep_rig(root, rng, quiet, 0.3, positives=1)
    return root / "model.onnx"


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "wyoming",
            "--uri",
            f"tcp://127.0.0.1:{port}",
            "--model",
            str(model),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline_s = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline_s:
            process.kill()
            raise AssertionError(f"wyoming server did not start: {process.communicate()[0].decode()}")
        time.sleep(0.2)
    yield port
    process.terminate()  # SIGTERM: what systemd sends (configs/streamer-wyoming.service)
    assert process.wait(timeout=10) == 0
    assert process.stdout is not None
    process.stdout.close()


def beeps(rng: np.random.Generator) -> np.ndarray:
    """int16: quiet, a beep, quiet, a beep, quiet."""
    quiet = lambda s: rng.standard_normal(int(RATE_HZ * s)) * 10 ** (-70 / 20)  # noqa: E731
    parts = [quiet(1.0), tone(rng, 0.3), quiet(1.2), tone(rng, 0.3), quiet(0.8)]
    return np.round(np.concatenate(parts) * 32767).astype(np.int16)


def offline_detections(model: Path, audio: np.ndarray) -> list[tuple[str, int]]:
    """(label, chunk timestamp in ms) of each event, stepping the same 100 ms chunks in process."""
    config = load_config(None, {"model": {"path": str(model)}})
    pipeline = Pipeline(model)
    detector = build_detector(pipeline, config)
    assert detector is not None
    found = []
    for start in range(0, len(audio), CHUNK):
        report = pipeline.push_report({"x": audio[start : start + CHUNK]})
        for _, event in detector.push_many([("x", report.scores["x"], report.step0["x"])]):
            found.append((event.label, start * 1000 // RATE_HZ))
    return found


async def converse(port: int, events: list[Event], until: set[str], timeout_s: float = 20.0) -> list[Event]:
    """Send `events`, then read answers until one of type in `until` (or the timeout: then fail)."""
    answers: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout_s)
            assert event is not None, "the server closed the connection"
            answers.append(event)
            if event.type in until:
                return answers


def session(audio: bytes | np.ndarray, rate: int = RATE_HZ, width: int = 2, names: list[str] | None = None) -> list:
    data = audio if isinstance(audio, bytes) else audio.tobytes()
    step = CHUNK * width
    chunks = [
        AudioChunk(rate=rate, width=width, channels=1, audio=data[i : i + step], timestamp=i // width * 1000 // rate)
        for i in range(0, len(data), step)
    ]
    return [
        Detect(names=names).event(),
        AudioStart(rate=rate, width=width, channels=1).event(),
        *(chunk.event() for chunk in chunks),
        AudioStop().event(),
    ]


def test_describe_lists_the_models_keywords(server: int) -> None:
    answers = asyncio.run(converse(server, [Describe().event()], {"info"}))
    info = Info.from_event(answers[-1])
    assert [program.name for program in info.wake] == ["streamer"]
    assert [(m.name, m.phrase, m.installed) for m in info.wake[0].models] == [("beep", "beep", True)]


def test_detections_equal_the_in_process_pipeline_on_the_same_chunks(server: int, model: Path) -> None:
    audio = beeps(np.random.default_rng(1))
    expected = offline_detections(model, audio)
    assert [label for label, _ in expected] == ["beep", "beep"]
    marker = np.zeros(RATE_HZ // 10, np.int16)  # a second, silent session on the same connection ends the read
    events = [*session(audio), *session(marker)]
    answers = asyncio.run(converse(server, events, {"not-detected"}))
    detections = [(a.data["name"], a.data["timestamp"]) for a in answers if a.type == "detection"]
    assert detections == expected
    assert [a.type for a in answers][-1] == "not-detected"  # the silent session: nothing since its audio-start


def test_detect_names_filter_and_quiet_audio_is_not_detected(server: int) -> None:
    audio = beeps(np.random.default_rng(2))
    answers = asyncio.run(converse(server, session(audio, names=["something_else"]), {"not-detected"}))
    assert [a.type for a in answers] == ["not-detected"]


def test_32_bit_and_resampled_audio_are_heard(server: int) -> None:
    audio = beeps(np.random.default_rng(3))
    wide = (audio.astype(np.int32) << 16).astype("<i4").tobytes()
    answers = asyncio.run(converse(server, session(wide, width=4), {"detection"}))
    assert answers[-1].data["name"] == "beep"
    upsampled = np.repeat(audio, 3)  # 48 kHz: resampled by the frontend
    answers = asyncio.run(converse(server, session(upsampled, rate=48000), {"detection"}))
    assert answers[-1].data["name"] == "beep"


def test_a_bad_chunk_gets_an_error_and_changes_nothing(server: int) -> None:
    audio = beeps(np.random.default_rng(4))
    events = session(audio)
    odd = AudioChunk(rate=RATE_HZ, width=2, channels=1, audio=b"\x01\x02\x03", timestamp=0).event()
    events.insert(2, odd)  # after audio-start, before the first good chunk
    answers = asyncio.run(converse(server, events, {"detection"}))
    assert answers[0].type == "error" and "whole frames" in answers[0].data["text"]
    assert answers[-1].data["name"] == "beep"


def test_pcm_decoding() -> None:
    np.testing.assert_array_equal(pcm_samples(np.array([1, -2], "<i2").tobytes(), 2, 1), [[1], [-2]])
    np.testing.assert_allclose(pcm_samples(bytes([0, 128, 255]), 1, 1)[:, 0], [-1.0, 0.0, 127 / 128])
    np.testing.assert_allclose(pcm_samples(np.array([-(2**31), 2**30], "<i4").tobytes(), 4, 2), [[-1.0, 0.5]])
    with pytest.raises(ValueError, match="width 3"):
        pcm_samples(b"\x00" * 6, 3, 1)
