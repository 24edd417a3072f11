"""Pipeline: samples in, scores out; equal to the offline features through the Engine, for any chunking."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import LABELS, sweep_signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.engine import Engine
from streamer.errors import ChunkError, ModelError
from streamer.frontend.logmel import logmel_offline
from streamer.pipeline import Pipeline


def feed(pipe: Pipeline, stream_id: str, x: np.ndarray, sizes: list[int], rate_hz: int = 16000) -> np.ndarray:
    outputs, start, i = [], 0, 0
    while start < len(x):
        size = sizes[i % len(sizes)]
        outputs.append(pipe.push({stream_id: x[start : start + size]}, rate_hz=rate_hz)[stream_id])
        start, i = start + size, i + 1
    return np.concatenate(outputs)


def test_scores_equal_offline_features_through_the_engine(logmel_model):
    pipe = Pipeline(logmel_model)
    assert pipe.labels == LABELS and pipe.step_period_s == 0.01 and pipe.sample_rate_hz == 16000
    x = sweep_signal(1.0)
    expected = Engine(logmel_model).step({"a": logmel_offline(x, pipe.frontend.params)})["a"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(pipe.push({"a": x})["a"], expected)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=8), seed=st.integers(0, 1000))
def test_any_chunking_gives_the_same_scores(logmel_model, sizes, seed):
    pipe = Pipeline(logmel_model)
    x = sweep_signal(0.7, seed=seed)
    whole = pipe.push({"whole": x})["whole"]
    np.testing.assert_array_equal(feed(pipe, "chunked", x, sizes), whole)


def test_per_stream_rates_and_empty_results(logmel_model):
    pipe = Pipeline(logmel_model)
    x16, x48 = sweep_signal(0.5), sweep_signal(0.5, rate_hz=48000)
    out = pipe.push({"a": x16[:100], "b": x48[:100]}, rate_hz={"b": 48000})
    assert out["a"].shape == out["b"].shape == (0, 3) and out["a"].dtype == np.float32
    assert "a" not in pipe.engine and "b" not in pipe.engine  # no frame yet: the engine was not asked
    out = pipe.push({"a": x16[100:], "b": x48[100:]}, rate_hz={"a": 16000, "b": 48000})
    assert len(out["a"]) == 48 and 0 < len(out["b"]) <= 48
    reference = Pipeline(logmel_model)
    np.testing.assert_array_equal(reference.push({"b": x48}, rate_hz=48000)["b"], out["b"])


def test_one_bad_stream_never_disturbs_the_others(logmel_model):
    pipe, alone = Pipeline(logmel_model), Pipeline(logmel_model)
    x = sweep_signal(0.5)
    pipe.push({"good": x[:4000], "bad": x[:4000]})
    report = pipe.push_report({"good": x[4000:], "bad": x[4000:].astype(np.float64) * np.nan})
    assert set(report.errors) == {"bad"} and isinstance(report.errors["bad"], ChunkError)
    assert report.step0["good"] == 23
    np.testing.assert_array_equal(alone.push({"g": x})["g"][23:], report.scores["good"])
    report = pipe.push_report({"bad": x[4000:]}, rate_hz=8000)
    assert "rate changed from 16000 Hz to 8000 Hz" in str(report.errors["bad"])
    steps_before = pipe.engine.steps_done("good")
    with pytest.raises(ChunkError, match="'bad'"):
        pipe.push({"good": x[:1600], "bad": x[:10]}, rate_hz={"bad": 44100})
    assert pipe.engine.steps_done("good") == steps_before  # push is all-or-nothing, like Engine.step
    np.testing.assert_array_equal(pipe.push({"good": x[:1600]})["good"], alone.push({"g": x[:1600]})["g"])


def test_reset_and_end_start_the_stream_over(logmel_model):
    pipe = Pipeline(logmel_model)
    x = sweep_signal(0.4)
    first = pipe.push({"a": x})["a"]
    pipe.push({"a": x[:1234]})
    assert pipe.reset("a")
    np.testing.assert_array_equal(pipe.push({"a": x})["a"], first)
    assert pipe.end("a") and not pipe.end("a") and "a" not in pipe.engine
    np.testing.assert_array_equal(pipe.push({"a": x})["a"], first)


def test_evict_idle_forgets_frontend_and_engine_state(logmel_model):
    pipe = Pipeline(logmel_model)
    x = sweep_signal(0.2)
    pipe.push({"old": x, "tail_only": x[:100]})
    assert sorted(pipe.evict_idle(10.0)) == []
    assert sorted(pipe.evict_idle(10.0, now_s=1e12)) == ["old", "tail_only"]
    assert "old" not in pipe.engine and pipe.frontend.streams == []  # type: ignore[attr-defined]


def test_model_without_frontend_takes_features(export_model):
    path = export_model(features=8, classes=3)
    pipe = Pipeline(path)
    assert pipe.step_period_s is None and pipe.frontend.channels == 8
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    np.testing.assert_array_equal(pipe.push({"a": x})["a"], Engine(path).step({"a": x})["a"])


def test_frontend_metadata_that_cannot_feed_the_model_is_refused(export_model, tmp_path):
    import json

    import onnx

    # The exporter refuses such metadata, so write it into an exported file by hand, as a careless tool might.
    model = onnx.load(str(export_model(features=8, classes=3)))
    model.metadata_props.add(key="streamer.frontend", value=json.dumps({"kind": "logmel", "n_mels": 40}))
    path = tmp_path / "mismatched.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=r"model .*\.onnx: logmel frontend: n_mels=40 but the model takes 8"):
        Pipeline(path)


def test_a_stream_refused_for_capacity_leaves_no_frontend_state(logmel_model):
    pipe = Pipeline(logmel_model, initial_slots=1, max_streams=1)
    x = sweep_signal(0.2)
    report = pipe.push_report({"first": x})
    report = pipe.push_report({"first": x, "second": x})
    assert set(report.errors) == {"second"} and type(report.errors["second"]).__name__ == "CapacityError"
    assert pipe.frontend.streams == ["first"] and "second" not in pipe.streams  # type: ignore[attr-defined]
    assert pipe.end("first")
    np.testing.assert_array_equal(pipe.push({"second": x})["second"], Pipeline(logmel_model).push({"s": x})["s"])


def test_push_report_async_equals_push_report(logmel_model):
    """The daemon's path (frontend now, model call on the compute thread) gives the same bits, errors included."""
    sync, concurrent = Pipeline(logmel_model), Pipeline(logmel_model)
    x = sweep_signal(0.6)
    for start, stop in ((0, 1500), (1500, 5000), (5000, len(x))):
        chunks = {"a": x[start:stop], "b": x[::-1][start:stop], "bad": x[start:stop].astype(np.float64) * np.nan}
        expected = sync.push_report(chunks)
        pending = concurrent.push_report_async(chunks)
        got = pending.finish()
        assert got is pending.finish()
        assert set(got.errors) == set(expected.errors) == {"bad"}
        assert got.step0 == expected.step0
        for stream_id, scores in expected.scores.items():
            np.testing.assert_array_equal(got.scores[stream_id], scores)
    assert concurrent.streams == sync.streams
    concurrent.engine.close()
