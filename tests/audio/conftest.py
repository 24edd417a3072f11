"""Audio fixtures: a small GRU exported by the real exporter with log-mel frontend metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_helpers import LABELS

from streamer.frontend.melspec import LogMelParams


@pytest.fixture(scope="session")
def logmel_model(export_model) -> Path:
    """GRU 2×16 over 40 log-mel features at 16 kHz, 3 classes (random weights: outputs still depend on input)."""
    return export_model(
        cell="gru", layers=2, features=40, hidden=16, classes=3, labels=LABELS, frontend=LogMelParams().to_dict()
    )


@pytest.fixture(scope="session")
def virtual_mic():
    """A PulseAudio pipe-source microphone (started for the session, stopped after); skipped with the reason
    when PulseAudio or PortAudio cannot run here."""
    from virtual_mic import virtual_mic_or_skip

    with virtual_mic_or_skip() as mic:
        yield mic
