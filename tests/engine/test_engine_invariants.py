"""The engine's defining invariants, property-tested: streaming equals offline for any chunking and interleaving;
a stream's results never depend on its batch neighbours; reset, eviction and snapshots touch only what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import Engine
from streamer.model.contract import open_session

FEATURES = 8
TOLERANCE = 1e-5
MODELS = [(cell, layers) for cell in ("gru", "lstm") for layers in (1, 2, 3)]


def offline(path: Path, x: np.ndarray) -> np.ndarray:
    """The whole sequence of one stream, alone, in one call from zero state."""
    engine = Engine(path)
    return engine.step({"alone": x})["alone"]


@st.composite
def workloads(draw: st.DrawFn) -> tuple[tuple[str, int], dict[str, list[int]], list[str], int]:
    """A model, per-stream chunk splits, and an interleaving of the streams' chunks."""
    model = draw(st.sampled_from(MODELS))
    n_streams = draw(st.integers(1, 64))
    splits = {f"s{i}": draw(st.lists(st.integers(1, 13), min_size=1, max_size=4)) for i in range(n_streams)}
    order = [sid for sid, chunks in splits.items() for _ in chunks]
    order = draw(st.permutations(order))
    seed = draw(st.integers(0, 2**31 - 1))
    return model, splits, list(order), seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workloads())
def test_any_chunking_and_interleaving_equals_offline(export_model, workload) -> None:
    (cell, layers), splits, order, seed = workload
    path = export_model(cell=cell, layers=layers, features=FEATURES)
    rng = np.random.default_rng(seed)
    signals = {sid: rng.standard_normal((sum(c), FEATURES)).astype(np.float32) for sid, c in splits.items()}

    # Walk the interleaving; each engine call takes the next chunk of every stream that is due, at most one each.
    engine = Engine(path, initial_slots=1)
    position = dict.fromkeys(splits, 0)
    next_chunk = dict.fromkeys(splits, 0)
    outputs: dict[str, list[np.ndarray]] = {sid: [] for sid in splits}
    pending = list(order)
    while pending:
        batch: dict[str, np.ndarray] = {}
        rest = []
        for sid in pending:
            if sid in batch:
                rest.append(sid)
                continue
            length = splits[sid][next_chunk[sid]]
            batch[sid] = signals[sid][position[sid] : position[sid] + length]
            position[sid] += length
            next_chunk[sid] += 1
        got = engine.step(batch)
        for sid, y in got.items():
            outputs[sid].append(y)
        pending = rest

    for sid, signal in signals.items():
        streamed = np.concatenate(outputs[sid])
        np.testing.assert_allclose(streamed, offline(path, signal), atol=TOLERANCE, rtol=0)


def test_neighbours_do_not_matter_bitwise(export_model) -> None:
    """The same stream stepped alone and amid 50 others gives the same bits."""
    path = export_model(cell="gru", layers=2, features=FEATURES)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, FEATURES)).astype(np.float32)
    alone = Engine(path).step({"me": x})["me"]
    crowd = {f"n{i}": rng.standard_normal((5, FEATURES)).astype(np.float32) for i in range(50)}
    crowded = Engine(path).step({**crowd, "me": x})["me"]
    np.testing.assert_allclose(crowded, alone, atol=TOLERANCE, rtol=0)


def test_matches_a_raw_session_whole_sequence(export_model) -> None:
    """The engine's output equals a bare onnxruntime call on the same data (no hidden transformation)."""
    path = export_model(cell="lstm", layers=2, features=FEATURES)
    x = np.random.default_rng(2).standard_normal((1, 9, FEATURES)).astype(np.float32)
    session = open_session(path)
    zeros = np.zeros((2, 1, 16), np.float32)
    (expected,) = session.run(["y"], {"x": x, "h0": zeros, "c0": zeros})
    np.testing.assert_array_equal(Engine(path).step({"a": x[0]})["a"], expected[0])


def _drive(engine: Engine, signals: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return engine.step({sid: x[start:stop] for sid, x in signals.items()})


def _signals(n: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"s{i}": rng.standard_normal((steps, FEATURES)).astype(np.float32) for i in range(n)}


def test_reset_changes_one_stream_only(export_model) -> None:
    path = export_model(cell="lstm", layers=2, features=FEATURES)
    signals = _signals(6, 10, seed=3)
    plain, touched = Engine(path), Engine(path)
    _drive(plain, signals, 0, 5)
    _drive(touched, signals, 0, 5)
    assert touched.reset("s2") is True
    assert touched.steps_done("s2") == 0
    a, b = _drive(plain, signals, 5, 10), _drive(touched, signals, 5, 10)
    for sid in signals:
        if sid != "s2":
            np.testing.assert_array_equal(a[sid], b[sid])
    np.testing.assert_allclose(b["s2"], offline(path, signals["s2"][5:10]), atol=TOLERANCE, rtol=0)
    assert touched.reset("nobody") is False


def test_eviction_returns_idle_streams_and_spares_the_rest(export_model) -> None:
    path = export_model(cell="gru", layers=1, features=FEATURES)
    signals = _signals(4, 6, seed=4)
    engine, reference = Engine(path), Engine(path)
    _drive(engine, signals, 0, 3)
    _drive(reference, signals, 0, 3)
    slot = engine.store.slot_of
    engine.store.last_active_s[slot["s1"]] -= 100.0  # s1 and s3 went quiet 100 s ago
    engine.store.last_active_s[slot["s3"]] -= 200.0
    evicted = engine.evict_idle(idle_s=50.0)
    assert evicted == ["s3", "s1"]  # oldest first
    assert engine.streams == ["s0", "s2"]
    rest = {sid: signals[sid] for sid in ("s0", "s2")}
    a, b = _drive(engine, rest, 3, 6), _drive(reference, rest, 3, 6)
    for sid in rest:
        np.testing.assert_array_equal(a[sid], b[sid])
    # An evicted stream that comes back starts from zero state, like a new one.
    back = engine.step({"s1": signals["s1"][3:6]})["s1"]
    np.testing.assert_allclose(back, offline(path, signals["s1"][3:6]), atol=TOLERANCE, rtol=0)


def test_snapshot_restore_continue_is_bit_identical(export_model, tmp_path: Path) -> None:
    path = export_model(cell="lstm", layers=3, features=FEATURES)
    signals = _signals(20, 12, seed=5)
    steady = Engine(path)
    _drive(steady, signals, 0, 7)
    expected = _drive(steady, signals, 7, 12)

    first = Engine(path)
    _drive(first, signals, 0, 7)
    first.snapshot(tmp_path / "state.npz")
    second = Engine(path, initial_slots=1)
    second.restore(tmp_path / "state.npz")
    assert sorted(second.streams) == sorted(signals)
    assert second.steps_done("s0") == 7
    got = _drive(second, signals, 7, 12)
    for sid in signals:
        np.testing.assert_array_equal(got[sid], expected[sid])


def test_growth_keeps_every_stream_exact(export_model) -> None:
    path = export_model(cell="gru", layers=2, features=FEATURES)
    engine = Engine(path, initial_slots=1)
    signals = _signals(40, 4, seed=6)
    outputs: dict[str, list[np.ndarray]] = {sid: [] for sid in signals}
    for step in range(4):  # streams join one by one across calls, forcing several doublings
        joined = {sid: x[step : step + 1] for i, (sid, x) in enumerate(signals.items()) if i < 10 * (step + 1)}
        for sid, y in engine.step(joined).items():
            outputs[sid].append(y)
    assert engine.store.capacity == 64
    for i, (sid, x) in enumerate(signals.items()):
        joined_at = i // 10
        np.testing.assert_allclose(np.concatenate(outputs[sid]), offline(path, x[joined_at:4]), atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_step0_counts_steps_per_stream(export_model, cell: str) -> None:
    engine = Engine(export_model(cell=cell, layers=1, features=FEATURES))
    x = np.zeros((3, FEATURES), np.float32)
    first = engine.step_report({"a": x, "b": x[:1]})
    second = engine.step_report({"a": x[:2], "b": x})
    assert first.step0 == {"a": 0, "b": 0}
    assert second.step0 == {"a": 3, "b": 1}
    assert first.calls == 2  # two distinct lengths, two calls
