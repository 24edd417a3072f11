"""CI miniature of `train-keyword`: a handful of espeak-ng/flite clips, a few steps, export, evaluation, card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamer.detect import DetectionParams
from streamer.model.contract import ModelSpec
from streamer.model.selftest import run_selftest
from streamer.pipeline import Pipeline
from streamer.train.keyword.fit import FitConfig
from streamer.train.keyword.recipe import KeywordRecipe, train_keyword
from streamer.train.keyword.synthesize import RenderPlan

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="espeak-ng and flite are needed (scripts/install-system.sh installs them)",
)


@pytest.mark.parametrize("features", ["logmel", "embedding"])
def test_train_keyword_miniature(features: str, tmp_path: Path) -> None:
    recipe = KeywordRecipe(
        phrases=("hey streamer", "lights on"),
        voices="ci",
        plan=RenderPlan(positives=3, near_misses=2, sentences=2),
        espeak_plan=RenderPlan(positives=2, near_misses=1, sentences=1),
        eval_plan=RenderPlan(positives=2, near_misses=2, sentences=3),
        train_hours=3 / 60,
        validation_hours=1 / 60,
        stream_s=20.0,
        fit=FitConfig(steps=6, lanes=4, segment_steps=100),
        eval_negative_hours=0.02,
        workers=1,
        features=features,
        ensemble=2 if features == "embedding" else 1,  # one model averaging two GRUs (embedding.combine)
    )
    out = tmp_path / "model"
    run = train_keyword(recipe, out, tmp_path / "data")

    assert run["labels"] == ["_background", "hey_streamer", "lights_on"]
    assert np.isfinite(run["loss_first_last"]).all()
    spec = ModelSpec.load(out / "model.onnx")
    assert spec.labels == run["labels"] and spec.scores == "probabilities"
    assert spec.frontend is not None
    if features == "logmel":
        assert spec.frontend["kind"] == "logmel" and spec.frontend["n_mels"] == 40
    else:  # raw audio in, the speech embedding and its state inside the model
        assert spec.frontend["kind"] == "waveform" and spec.frontend["frame_samples"] == 1280
        assert "conv11" in spec.metadata["streamer.state"] and "streamer.keyword.embedding" in spec.metadata
        assert {"h0_0", "h0_1"} <= {s.input for s in spec.states} and run["recipe"]["ensemble"] == 2
    step_s = 0.01 if features == "logmel" else 0.08
    detection = DetectionParams.resolve(spec.labels, spec.metadata, step_s)
    assert detection is not None and all(0 < t <= 1 for t in detection.thresholds)
    assert run_selftest(out / "model.onnx").ok

    # What the daemon does with it: raw audio in, one probability row per 10 (80) ms step.
    pipeline = Pipeline(out / "model.onnx")
    scores = pipeline.push({"mic": np.zeros((48000, 1), np.int16)}, rate_hz=48000)["mic"]
    expected = (80, 98) if features == "logmel" else (11, 12)  # 1 s, less the resampler's delay
    assert scores.shape[1] == 3 and expected[0] <= scores.shape[0] <= expected[1]
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)

    report = json.loads((out / "eval.json").read_text())
    for key in (
        "negative_hours",
        "positives",
        "frr_at_0_5_fa_per_hour",
        "frr_at_1_fa_per_hour",
        "thresholds",
        "median_latency_ms",
        "det",
        "per_keyword",
    ):
        assert key in report
    assert report["positives"] == run["clips"]["heldout_positives"] > 0
    assert report["negative_hours"] >= 0.02 * 0.99
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"
    stress = json.loads((out / "eval_near_misses.json").read_text())
    assert stress["negative_files"] == run["eval_set"]["near_miss_clips"] > 0
    card = (out / "README.md").read_text()
    assert "Held-out voices" in card and "hey streamer" in card and "Near-miss stress test" in card
    assert json.loads((out / "train_config.json").read_text())["recipe"]["phrases"] == ["hey streamer", "lights on"]
