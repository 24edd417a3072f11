"""Fixtures for reliability tests: real daemon processes (the daemon tests' helpers) and a small audio model."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))

from daemon_helpers import LABELS, LOGMEL, DaemonProcess


@pytest.fixture(scope="session")
def audio_model_path(export_model: Callable[..., Path]) -> Path:
    return export_model(cell="gru", layers=1, features=40, hidden=16, classes=3, seed=5, labels=LABELS, frontend=LOGMEL)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(model: Path, sections: dict[str, Any] | None = None, **kwargs: Any) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path, model, sections, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
