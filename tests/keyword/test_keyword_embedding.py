"""The speech-embedding keyword model: its feature graph is openWakeWord's streaming arithmetic, made stateful
and batchable, and joined to a GRU it is a contract model whose streaming equals its offline run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from streamer.model.contract import ModelSpec
from streamer.model.export import export_module
from streamer.model.selftest import run_selftest
from streamer.pipeline import Pipeline
from streamer.train.keyword import embedding
from streamer.train.keyword.model import KeywordNet, ProbabilityOutput


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise with a slow loudness envelope (quiet and loud steps, so the per-step 80 dB floor acts): float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    envelope = np.sin(np.arange(n) / 3000.0) ** 2
    return (0.1 * rng.standard_normal(n) * envelope).astype(np.float32)


def openwakeword_streaming(audio: np.ndarray) -> np.ndarray:
    """openWakeWord's own streaming loop (utils.AudioFeatures, one 1,280-sample chunk at a time, batch 1) on its
    two ONNX files, with zeros as the initial buffers (ours are zero state, theirs ones)."""
    mel_path, embedding_path = embedding.model_files()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    mel = ort.InferenceSession(str(mel_path), options, providers=["CPUExecutionProvider"])
    net = ort.InferenceSession(str(embedding_path), options, providers=["CPUExecutionProvider"])
    context, ring, out = np.zeros(480, np.float32), np.zeros((68, 32), np.float32), []
    for t in range(len(audio) // 1280):
        chunk = np.concatenate([context, audio[t * 1280 : (t + 1) * 1280]])
        context = chunk[-480:]
        frames = mel.run(None, {"input": (chunk * 32768)[None]})[0].squeeze() / 10 + 2
        window = np.concatenate([ring, frames])
        ring = window[-68:]
        out.append(net.run(None, {"input_1": window[None, :, :, None].astype(np.float32)})[0].squeeze())
    return np.array(out)


def test_the_streaming_network_equals_openwakewords_window_once_it_has_76_frames():
    audio = speechlike(4.0, 0)
    reference = openwakeword_streaming(audio)
    ours = embedding.Embedder()(audio)
    assert ours.shape == reference.shape == (50, 96)
    # From step 9 on, the window holds no frame from before the stream: the same rows, computed once each
    # (float32 sums in another order: one Conv over all steps instead of one call per window).
    np.testing.assert_allclose(ours[9:], reference[9:], atol=2e-6 * np.abs(reference).max())
    assert np.abs(ours[0] - reference[0]).max() > 1.0  # before: zero states, not the window's zero frames


def test_embeddings_do_not_depend_on_steps_per_call():
    audio = speechlike(2.0, 1)
    whole = embedding.Embedder()(audio)
    for steps in (1, 4):
        np.testing.assert_allclose(embedding.Embedder()(audio, steps_per_call=steps), whole, atol=1e-4)


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ProbabilityOutput]:
    folder = tmp_path_factory.mktemp("embedding-model")
    torch.manual_seed(0)
    net = KeywordNet(embedding.EMBEDDING_DIM, 3, hidden=16, layers=2)
    head = ProbabilityOutput(net).eval()
    export_module(head, folder / "head.onnx", features=96, labels=["_background", "a", "b"], scores="probabilities")
    embedding.combine(folder / "head.onnx", folder / "model.onnx", {"streamer.keyword.embedding": "test"})
    return folder / "model.onnx", head


def test_the_combined_model_keeps_the_contract(combined):
    path, _ = combined
    spec = ModelSpec.load(path)
    assert spec.frontend == {"kind": "waveform", "sample_rate_hz": 16000, "frame_samples": 1280, "channel": None}
    assert spec.labels == ["_background", "a", "b"] and spec.metadata["streamer.keyword.embedding"] == "test"
    report = run_selftest(path)
    assert report.ok, report


def test_pipeline_with_any_chunking_equals_embeddings_then_gru(combined):
    path, head = combined
    rng = np.random.default_rng(2)
    audio = np.clip(speechlike(4.0, 3) * 32768, -32768, 32767).astype(np.int16)
    with torch.no_grad():
        emb = torch.from_numpy(embedding.Embedder()(audio.astype(np.float32) / 32768))[None]
        offline = head(emb, head.net.zero_state(1))[0][0].numpy()
    pipeline, outputs, start = Pipeline(path), [], 0
    while start < len(audio):
        size = int(rng.integers(1, 4000))
        outputs.append(pipeline.push({"mic": audio[start : start + size]})["mic"])
        start += size
    streamed = np.concatenate(outputs)
    assert streamed.shape == offline.shape == (50, 3)
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


def test_an_ensemble_of_heads_averages_their_probabilities(tmp_path):
    """Two heads on one feature graph: y is the mean of each head alone; the contract and self-test hold."""
    singles = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        head = ProbabilityOutput(KeywordNet(embedding.EMBEDDING_DIM, 3, hidden=8, layers=1)).eval()
        export_module(head, tmp_path / f"head{seed}.onnx", features=96, labels=["_background", "a", "b"])
        embedding.combine(tmp_path / f"head{seed}.onnx", tmp_path / f"single{seed}.onnx", {})
        singles.append(tmp_path / f"single{seed}.onnx")
    embedding.combine([tmp_path / "head1.onnx", tmp_path / "head2.onnx"], tmp_path / "both.onnx", {})
    spec = ModelSpec.load(tmp_path / "both.onnx")
    assert {"h0_0", "h0_1", "conv1"} <= {s.input for s in spec.states} and spec.labels == ["_background", "a", "b"]
    assert run_selftest(tmp_path / "both.onnx").ok
    audio = np.clip(speechlike(3.0, 7) * 32768, -32768, 32767).astype(np.int16)
    alone = [Pipeline(path).push({"s": audio})["s"] for path in singles]
    together = Pipeline(tmp_path / "both.onnx").push({"s": audio})["s"]
    np.testing.assert_allclose(together, (alone[0] + alone[1]) / 2, atol=1e-6)
