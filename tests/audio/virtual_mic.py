"""The PulseAudio pipe-source virtual microphone for tests: start what is missing, stop what we started."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


class Unavailable(Exception):
    """The virtual microphone cannot run here; the message says why (tests skip with it)."""


@dataclass
class VirtualMic:
    fifo: Path
    source_name: str

    def write(self, samples: np.ndarray, piece_frames: int = 1600, timeout_s: float = 30.0) -> None:
        """Write int16 mono samples into the pipe, paced by PulseAudio reading it; AssertionError instead of
        hanging when nothing reads the pipe for `timeout_s` (e.g. the sound server went away)."""
        data = memoryview(np.ascontiguousarray(samples, dtype="<i2").tobytes())
        deadline_s = time.monotonic() + timeout_s
        while True:  # a non-blocking open fails with ENXIO until PulseAudio has the pipe open for reading
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline_s:
                    raise AssertionError(f"nobody reads {self.fifo}: is PulseAudio's pipe source loaded?") from None
                time.sleep(0.05)
        try:
            written = 0
            while written < len(data):
                _, writable, _ = select.select([], [fd], [], max(0.0, deadline_s - time.monotonic()))
                if not writable:
                    raise AssertionError(f"{self.fifo}: PulseAudio stopped reading ({written} of {len(data)} bytes)")
                written += os.write(fd, data[written : written + 2 * piece_frames])
        finally:
            os.close(fd)


def _pactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=20, check=False)


def _server_up() -> bool:
    return _pactl("info").returncode == 0


@contextmanager
def virtual_mic(rate_hz: int = 16000) -> Iterator[VirtualMic]:
    """A pipe source named uniquely for this process, made the default for our PulseAudio clients."""
    for tool, package in (("pulseaudio", "pulseaudio"), ("pactl", "pulseaudio-utils")):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed (apt-get install {package}; `make setup` does it)")
    started = False
    if not _server_up():
        run = subprocess.run(
            ["pulseaudio", "-D", "--exit-idle-time=-1", "--disallow-exit"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _server_up() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _server_up():
            raise Unavailable(f"pulseaudio did not start (rc {run.returncode}): {run.stderr.strip()[-500:]}")
        started = True
    folder = Path(tempfile.mkdtemp(prefix="streamer-virtmic-"))
    name = f"streamer_test_mic_{os.getpid()}_{folder.name.rsplit('-', 1)[-1]}"  # unique: fixtures may nest
    fifo = folder / "mic.fifo"  # module-pipe-source creates it (and refuses a path that exists)
    module_id = None
    previous = os.environ.get("PULSE_SOURCE")
    try:
        loaded = _pactl("load-module", "module-pipe-source", f"source_name={name}", f"file={fifo}",
                        "format=s16le", f"rate={rate_hz}", "channels=1")  # fmt: skip
        if loaded.returncode != 0:
            raise Unavailable(f"pactl load-module module-pipe-source failed: {loaded.stderr.strip()}")
        module_id = loaded.stdout.strip()
        # Our own clients record from it by default, without changing the server's default for anyone else.
        os.environ["PULSE_SOURCE"] = name
        _refresh_portaudio()
        yield VirtualMic(fifo, name)
    finally:
        if previous is None:
            os.environ.pop("PULSE_SOURCE", None)
        else:
            os.environ["PULSE_SOURCE"] = previous
        if module_id is not None:
            _pactl("unload-module", module_id)
        if started:
            subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=20, check=False)
            # --kill returns before the server is gone: a next fixture must not find (and use) a dying server.
            deadline_s = time.monotonic() + 10
            while _server_up() and time.monotonic() < deadline_s:
                time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def _refresh_portaudio() -> None:
    """PortAudio lists devices once, when sounddevice is imported: re-list if that happened before the server ran."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


@contextmanager
def virtual_mic_or_skip() -> Iterator[VirtualMic]:
    """`virtual_mic()` for a fixture: skips the test, with the reason, where PortAudio or PulseAudio cannot run."""
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"PortAudio missing ({exc}): apt-get install libportaudio2")
    try:
        with virtual_mic() as mic:
            yield mic
    except Unavailable as exc:
        pytest.skip(f"virtual microphone unavailable: {exc}")
