"""The asynchronous step (model call on the compute thread) gives exactly what the synchronous one gives, and the
engine holds still while it runs: every other call applies the pending step first, and a failed call changes no
state."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import Engine

FEATURES = 8


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cell=st.sampled_from(["gru", "lstm"]),
    batches=st.lists(
        st.tuples(
            st.lists(st.integers(0, 9), min_size=1, max_size=10, unique=True),  # streams in the batch
            st.integers(1, 6),  # chunk length
            st.sampled_from(["finish", "reset", "end", "step"]),  # what happens before finish()
        ),
        min_size=1,
        max_size=8,
    ),
    seed=st.integers(0, 2**31 - 1),
)
def test_async_steps_equal_sync_steps_bitwise(export_model, cell, batches, seed) -> None:
    path = export_model(cell=cell, layers=2, features=FEATURES)
    rng = np.random.default_rng(seed)
    sync, concurrent = Engine(path, initial_slots=1), Engine(path, initial_slots=1)
    for streams, length, interleaved in batches:
        chunks = {f"s{i}": rng.standard_normal((length, FEATURES)).astype(np.float32) for i in streams}
        expected = sync.step_report(chunks)
        pending = concurrent.step_report_async(chunks)
        # Calls made while the model call may still run must see its result applied first.
        if interleaved == "reset":
            assert sync.reset("s0") == concurrent.reset("s0")
        elif interleaved == "end":
            assert sync.end("s1") == concurrent.end("s1")
        elif interleaved == "step":
            extra = {"other": rng.standard_normal((2, FEATURES)).astype(np.float32)}
            np.testing.assert_array_equal(concurrent.step(extra)["other"], sync.step(extra)["other"])
        got = pending.finish()
        assert got is pending.finish()  # idempotent: the same report
        assert got.scores.keys() == expected.scores.keys()
        for stream_id, scores in expected.scores.items():
            np.testing.assert_array_equal(got.scores[stream_id], scores)
        assert got.step0 == expected.step0
        assert {s: concurrent.steps_done(s) for s in chunks} == {s: sync.steps_done(s) for s in chunks}
    concurrent.close()


def test_a_failed_model_call_changes_no_state(export_model, monkeypatch: pytest.MonkeyPatch) -> None:
    path = export_model(cell="gru", layers=2, features=FEATURES)
    engine, reference = Engine(path), Engine(path)
    x = np.random.default_rng(0).standard_normal((4, FEATURES)).astype(np.float32)
    engine.step({"a": x})
    reference.step({"a": x})

    def broken(*args: object) -> None:
        raise RuntimeError("onnxruntime failed")

    monkeypatch.setattr(engine.session, "run", broken)
    pending = engine.step_report_async({"a": x})
    with pytest.raises(RuntimeError, match="onnxruntime failed"):
        pending.finish()
    with pytest.raises(RuntimeError):  # the same failure again, never a half-applied step
        pending.finish()
    monkeypatch.undo()
    np.testing.assert_array_equal(engine.step({"a": x})["a"], reference.step({"a": x})["a"])
    assert engine.steps_done("a") == reference.steps_done("a") == 8
    engine.close()


def test_snapshot_waits_for_the_pending_step(export_model, tmp_path) -> None:
    path = export_model(cell="lstm", layers=1, features=FEATURES)
    x = np.random.default_rng(1).standard_normal((3, FEATURES)).astype(np.float32)
    engine = Engine(path)
    pending = engine.step_report_async({"a": x, "b": x})
    engine.snapshot(tmp_path / "state.snap")  # applies the pending step first
    restored = Engine(path)
    restored.restore(tmp_path / "state.snap")
    assert restored.steps_done("a") == restored.steps_done("b") == 3
    assert pending.finish().step0 == {"a": 0, "b": 0}
    np.testing.assert_array_equal(restored.step({"a": x})["a"], engine.step({"a": x})["a"])
    engine.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parallel=st.integers(2, 4),
    rounds=st.lists(st.tuples(st.integers(1, 90), st.integers(1, 4)), min_size=1, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_parallel_calls_split_a_batch_and_keep_every_streams_answer(export_model, parallel, rounds, seed) -> None:
    """`parallel_calls` runs parts of a batch side by side: the same scores and steps as one call per batch (to
    onnxruntime's batch-size rounding), each stream's state carried across rounds."""
    path = export_model(cell="gru", layers=2, features=FEATURES)
    rng = np.random.default_rng(seed)
    one, split = Engine(path, initial_slots=4), Engine(path, initial_slots=4, parallel_calls=parallel)
    for streams, length in rounds:
        chunks = {f"s{i}": rng.standard_normal((length, FEATURES)).astype(np.float32) for i in range(streams)}
        expected, got = one.step_report(chunks), split.step_report_async(chunks).finish()
        assert got.calls == max(1, min(parallel, streams // 16))  # parts of at least 16 streams
        assert got.step0 == expected.step0 and got.scores.keys() == expected.scores.keys()
        for stream_id, scores in expected.scores.items():
            np.testing.assert_allclose(got.scores[stream_id], scores, atol=2e-6, err_msg=stream_id)
    split.close()
