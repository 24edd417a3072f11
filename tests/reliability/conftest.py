"""Fixtures for reliability tests: the daemon tests' real-daemon fixture (`daemon_factory`) and a small audio model."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))

from daemon_helpers import LABELS, LOGMEL, daemon_factory  # noqa: F401  (the fixture, shared with tests/daemon)


@pytest.fixture(scope="session")
def audio_model_path(export_model: Callable[..., Path]) -> Path:
    return export_model(cell="gru", layers=1, features=40, hidden=16, classes=3, seed=5, labels=LABELS, frontend=LOGMEL)
