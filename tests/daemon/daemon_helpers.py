"""Helpers for daemon tests: a real daemon child process on free loopback ports, test audio, answer collection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamer.client import Subscriber, wait_until_serving
from streamer.daemon.protocol import OutputMessage
from streamer.errors import ConfigError

LOGMEL = {
    "kind": "logmel",
    "sample_rate_hz": 16000,
    "win_ms": 25.0,
    "hop_ms": 10.0,
    "n_fft": 512,
    "n_mels": 40,
    "f_min_hz": 20.0,
    "f_max_hz": 7600.0,
    "log_floor": 1e-6,
}
LABELS = ["_background", "hey", "stop"]
DETECTION = {
    "background": ["_background"],
    "threshold": 0.5,
    "smoothing_steps": 3,
    "patience_steps": 2,
    "refractory_s": 0.5,
}


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start real daemons with `daemon_factory(model, sections, **kwargs)`; all are killed after the test."""
    started: list[DaemonProcess] = []

    def start(model: Path, sections: dict[str, Any] | None = None, **kwargs: Any) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path, model, sections, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


class DaemonProcess:
    """`streamer serve --config <tmp>` in a child process; `stop()` sends SIGTERM and returns the exit code."""

    def __init__(
        self,
        tmp_path: Path,
        model: Path,
        sections: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
        same_endpoints_as: DaemonProcess | None = None,
    ) -> None:
        if same_endpoints_as is not None:  # a restart: clients that stayed connected reconnect by themselves
            self.ingest, self.publish = same_endpoints_as.ingest, same_endpoints_as.publish
            self.metrics_port = same_endpoints_as.metrics_port
        else:
            self.ingest = f"tcp://127.0.0.1:{free_port()}"
            self.publish = f"tcp://127.0.0.1:{free_port()}"
            self.metrics_port = free_port()
        config: dict[str, Any] = {
            "model": {"path": str(model)},
            "ingest": {"endpoint": self.ingest},
            "publish": {"endpoint": self.publish},
            "metrics": {"port": self.metrics_port},
        }
        for name, values in (sections or {}).items():
            if isinstance(values, dict):
                config.setdefault(name, {}).update(values)
            else:
                config[name] = values
        name = f"daemon-{self.metrics_port}" + ("-restart" if same_endpoints_as is not None else "")
        self.config_path = tmp_path / f"{name}.toml"
        self.write_config(config)
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamer.cli.main", "serve", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout_s: float = 60) -> None:
        """Until the daemon answers; fails at once (with its log) if it exits instead."""
        deadline_s = time.monotonic() + timeout_s
        while True:
            try:
                wait_until_serving(self.ingest, self.publish, timeout_s=1)
                return
            except ConfigError:
                if self.process.poll() is not None or time.monotonic() > deadline_s:
                    self.kill()
                    raise AssertionError(f"daemon did not serve (exit {self.process.poll()}): {self.log}") from None

    def write_config(self, config: dict[str, Any]) -> None:
        """TOML from {section: {key: value}}; non-dict values are top-level keys (e.g. drain_timeout_s)."""
        lines = [f"{key} = {toml_value(value)}" for key, value in config.items() if not isinstance(value, dict)]
        for name, values in config.items():
            if isinstance(values, dict):
                lines.append(f"[{name}]")
                lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout_s: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 30) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def speechlike(seconds: float, rate_hz: int = 16000, seed: int = 0, channels: int = 1) -> np.ndarray:
    """int16 [frames, channels]: noise plus a gliding tone, different per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    tone = 0.3 * np.sin(2 * np.pi * (200 + 100 * seed + 150 * np.sin(2 * np.pi * 0.7 * t)) * t)
    mono = np.clip((tone + 0.05 * rng.standard_normal(len(t))) * 32767, -32768, 32767)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.int16)


def collect(
    subscriber: Subscriber, done: Callable[[list[OutputMessage]], bool], timeout_s: float = 30
) -> list[OutputMessage]:
    """Messages until `done(messages)` is true; fails the test after `timeout_s`."""
    messages: list[OutputMessage] = []
    deadline_s = time.monotonic() + timeout_s
    while not done(messages):
        remaining_ms = int((deadline_s - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise AssertionError(f"timed out after {timeout_s} s with {len(messages)} messages")
        message = subscriber.recv(timeout_ms=min(remaining_ms, 500))
        if message is not None:
            messages.append(message)
    return messages


def stitch(messages: list[OutputMessage], stream_id: str) -> np.ndarray:
    """A stream's pred payloads in step order, checked to be contiguous from step 0."""
    preds = sorted(
        (m for m in messages if m.kind == "pred" and m.stream_id == stream_id), key=lambda m: m.header["seq"]
    )
    step = 0
    for message in preds:
        assert message.header["step0"] == step, (stream_id, message.header)
        step += message.header["steps"]
    return np.concatenate([m.scores for m in preds if m.scores is not None])
