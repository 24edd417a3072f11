"""Snapshots from another model or corrupt files are refused and leave the engine as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer import Engine
from streamer.errors import SnapshotError

FEATURES = 8


def test_snapshot_of_another_model_is_refused(export_model, tmp_path: Path) -> None:
    mine = Engine(export_model(cell="gru", layers=1, features=FEATURES, seed=1))
    theirs = Engine(export_model(cell="gru", layers=1, features=FEATURES, seed=2))
    theirs.step({"x": np.ones((2, FEATURES), np.float32)})
    theirs.snapshot(tmp_path / "theirs.npz")
    mine.step({"keep": np.ones((2, FEATURES), np.float32)})
    with pytest.raises(SnapshotError, match="another model"):
        mine.restore(tmp_path / "theirs.npz")
    assert mine.streams == ["keep"] and mine.steps_done("keep") == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_corrupt_snapshot_is_refused(export_model, tmp_path: Path, damage: str) -> None:
    engine = Engine(export_model(cell="lstm", layers=1, features=FEATURES))
    engine.step({"a": np.ones((2, FEATURES), np.float32)})
    path = tmp_path / "state.npz"
    engine.snapshot(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a snapshot at all")
    else:
        path.unlink()
    with pytest.raises(SnapshotError, match=str(path)):
        engine.restore(path)
    assert engine.streams == ["a"]


def test_snapshot_is_written_atomically(export_model, tmp_path: Path) -> None:
    engine = Engine(export_model(cell="gru", layers=1, features=FEATURES))
    engine.step({"a": np.ones((2, FEATURES), np.float32)})
    engine.snapshot(tmp_path / "state.npz")
    engine.snapshot(tmp_path / "state.npz")  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]  # no temp files left behind
