"""Pipeline snapshots: snapshot → new process's Pipeline → restore → continue equals never stopping."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from streamer.errors import SnapshotError
from streamer.pipeline import Pipeline

LOGMEL = {"kind": "logmel", "sample_rate_hz": 16000, "n_mels": 8}


@pytest.fixture(scope="module")
def audio_model(export_model) -> Path:
    return export_model(cell="gru", layers=2, features=8, frontend=LOGMEL)


def chunks_of(signal: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *sizes])
    return [signal[a:b] for a, b in itertools.pairwise(edges)]


def test_restart_continues_bit_exactly(audio_model: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    streams = {f"mic-{i}": (rng.standard_normal(16000) * 3000).astype(np.int16) for i in range(5)}
    sizes = [997, 1601, 333, 2400, 5000, 1200, 4469]  # odd sizes: tails are carried across the restart
    split = 4

    steady = Pipeline(audio_model)
    expected: dict[str, list[np.ndarray]] = {s: [] for s in streams}
    for k in range(len(sizes)):
        for sid, y in steady.push({s: chunks_of(x, sizes)[k] for s, x in streams.items()}).items():
            expected[sid].append(y)

    first = Pipeline(audio_model)
    got: dict[str, list[np.ndarray]] = {s: [] for s in streams}
    for k in range(split):
        for sid, y in first.push({s: chunks_of(x, sizes)[k] for s, x in streams.items()}).items():
            got[sid].append(y)
    first.snapshot(tmp_path / "state.npz", annotations={"last_seq": {"mic-0": 3}})
    del first

    second = Pipeline(audio_model)
    assert second.restore(tmp_path / "state.npz") == {"last_seq": {"mic-0": 3}}
    assert sorted(second.streams) == sorted(streams)
    for k in range(split, len(sizes)):
        for sid, y in second.push({s: chunks_of(x, sizes)[k] for s, x in streams.items()}).items():
            got[sid].append(y)
    for sid in streams:
        np.testing.assert_array_equal(np.concatenate(got[sid]), np.concatenate(expected[sid]))


def test_a_stream_with_less_than_a_frame_survives(audio_model: Path, tmp_path: Path) -> None:
    first = Pipeline(audio_model)
    signal = (np.random.default_rng(1).standard_normal(1000) * 1000).astype(np.int16)
    assert first.push({"short": signal[:100]})["short"].shape[0] == 0  # not a whole window yet
    first.snapshot(tmp_path / "s.npz")
    second = Pipeline(audio_model)
    second.restore(tmp_path / "s.npz")
    assert "short" in second.streams
    np.testing.assert_array_equal(
        second.push({"short": signal[100:]})["short"], Pipeline(audio_model).push({"short": signal})["short"]
    )


def test_another_models_snapshot_is_refused_and_nothing_changes(export_model, audio_model: Path, tmp_path) -> None:
    other = Pipeline(export_model(cell="gru", layers=2, features=8, frontend=LOGMEL, seed=9))
    other.push({"x": np.zeros(1600, np.int16)})
    other.snapshot(tmp_path / "other.npz")
    mine = Pipeline(audio_model)
    mine.push({"keep": np.ones(1600, np.int16)})
    with pytest.raises(SnapshotError, match="another model"):
        mine.restore(tmp_path / "other.npz")
    assert mine.streams == ["keep"] and mine.engine.steps_done("keep") > 0
