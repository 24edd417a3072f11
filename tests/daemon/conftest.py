"""Fixtures for daemon tests: real daemon processes, and a keyword model exported by the real exporter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_helpers import DETECTION, LABELS, LOGMEL, daemon_factory  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def keyword_model(export_model: Callable[..., Path]) -> Path:
    """A small log-mel GRU keyword model with detection metadata (random weights: outputs, not accuracy)."""
    return export_model(
        cell="gru",
        layers=1,
        features=40,
        hidden=16,
        classes=3,
        seed=3,
        labels=LABELS,
        frontend=LOGMEL,
        extra_metadata={"streamer.detection": DETECTION},
    )
