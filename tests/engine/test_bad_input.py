"""Bad chunks are refused for their stream alone; a full store and a missing provider say so clearly."""

from __future__ import annotations

import numpy as np
import pytest

from streamer import Engine
from streamer.errors import CapacityError, ChunkError, DeviceError

FEATURES = 8


def good(seed: int, steps: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((steps, FEATURES)).astype(np.float32)


BAD_CHUNKS = {
    "nan": (np.full((4, FEATURES), np.nan, np.float32), "NaN or Inf"),
    "inf": (np.concatenate([good(0, 3), np.full((1, FEATURES), np.inf, np.float32)]), "NaN or Inf"),
    "width": (np.zeros((4, FEATURES + 1), np.float32), "expected [time, 8]"),
    "dtype": (np.zeros((4, FEATURES), np.float64), "dtype float64, expected float32"),
    "rank": (np.zeros(FEATURES, np.float32), "expected [time, 8]"),
    "list": ([[0.0] * FEATURES], "expected a float32 numpy array"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CHUNKS))
def test_bad_chunk_is_refused_for_its_stream_alone(export_model, kind: str) -> None:
    path = export_model(cell="gru", layers=2, features=FEATURES)
    bad, message = BAD_CHUNKS[kind]
    engine, reference = Engine(path), Engine(path)
    warmup = {"victim": good(1), "other": good(2)}
    engine.step(warmup)
    reference.step(warmup)

    report = engine.step_report({"victim": bad, "other": good(3), "new": good(4)})
    assert set(report.errors) == {"victim"}
    assert isinstance(report.errors["victim"], ChunkError)
    assert message in str(report.errors["victim"]) and "victim" in str(report.errors["victim"])
    expected = reference.step({"other": good(3), "new": good(4)})
    for sid in ("other", "new"):
        np.testing.assert_array_equal(report.scores[sid], expected[sid])

    # The victim's state is as it was: its next good chunk gives what it would have without the bad one.
    assert engine.steps_done("victim") == 4
    np.testing.assert_array_equal(
        engine.step({"victim": good(5)})["victim"], reference.step({"victim": good(5)})["victim"]
    )


def test_step_raises_before_touching_anything(export_model) -> None:
    engine = Engine(export_model(cell="gru", layers=1, features=FEATURES))
    with pytest.raises(ChunkError, match="'b'"):
        engine.step({"a": good(0), "b": np.zeros((2, 3), np.float32)})
    assert engine.streams == []


def test_a_bad_chunk_never_creates_a_stream(export_model) -> None:
    engine = Engine(export_model(cell="gru", layers=1, features=FEATURES))
    engine.step_report({"ghost": np.full((2, FEATURES), np.nan, np.float32)})
    assert "ghost" not in engine


def test_empty_chunk_steps_nothing(export_model) -> None:
    engine = Engine(export_model(cell="gru", layers=1, features=FEATURES, classes=3))
    report = engine.step_report({"a": np.zeros((0, FEATURES), np.float32)})
    assert report.scores["a"].shape == (0, 3) and report.calls == 0


def test_full_store_refuses_new_streams_only(export_model) -> None:
    path = export_model(cell="gru", layers=1, features=FEATURES)
    engine = Engine(path, initial_slots=1, max_streams=3)
    engine.step({f"s{i}": good(i) for i in range(3)})
    report = engine.step_report({"s0": good(10), "s1": good(11), "late": good(12)})
    assert set(report.errors) == {"late"}
    assert isinstance(report.errors["late"], CapacityError)
    assert "max_streams is 3" in str(report.errors["late"])
    assert sorted(report.scores) == ["s0", "s1"]
    engine.end("s2")
    assert "late" in engine.step({"late": good(12)})


def test_cuda_where_unavailable_is_an_error_not_a_fallback(export_model) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the refusal cannot be shown here")
    with pytest.raises(DeviceError, match=r"'cuda'.*not available"):
        Engine(export_model(), provider="cuda")
    with pytest.raises(DeviceError, match="not known"):
        Engine(export_model(), provider="tpu")
