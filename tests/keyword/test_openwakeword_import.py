"""`streamer import-openwakeword`: openWakeWord's classifiers served statefully. After the warm-up every score
equals the original classifier file on openWakeWord's window of embeddings, whatever the chunking; files that
are not such classifiers, or that mix batch rows, are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from test_keyword_embedding import speechlike

from streamer.errors import ModelError
from streamer.model.contract import ModelSpec
from streamer.model.selftest import run_selftest
from streamer.pipeline import Pipeline
from streamer.train.keyword import embedding, openwakeword


def reference_scores(source: Path, audio: np.ndarray, window: int) -> np.ndarray:
    """openWakeWord's way: the original classifier file, batch 1, on the last `window` embeddings at each step."""
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    emb = embedding.Embedder()(audio)
    rows = [session.run(None, {name: emb[None, t - window + 1 : t + 1]})[0][0] for t in range(window - 1, len(emb))]
    return np.array(rows)


@pytest.fixture(scope="module", params=["hey_jarvis", "timer"])
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    source = openwakeword.builtin_models()[request.param]
    out = tmp_path_factory.mktemp(request.param) / "model.onnx"
    (classifier,) = openwakeword.convert([source], out)
    return source, out, classifier


def test_the_wheels_classifiers_are_found_by_name():
    assert {"alexa", "hey_jarvis", "hey_mycroft", "timer", "weather"} <= set(openwakeword.builtin_models())
    assert openwakeword.resolve_source("hey_jarvis").name == "hey_jarvis_v0.1.onnx"
    with pytest.raises(ModelError, match=r"no_such_word: no such file.*hey_jarvis"):
        openwakeword.resolve_source("no_such_word")


def test_the_converted_model_keeps_the_contract(converted):
    source, path, classifier = converted
    spec = ModelSpec.load(path)
    assert spec.frontend is not None and spec.frontend["kind"] == "waveform"
    assert spec.labels == classifier.labels and spec.labels[0] == "_background"
    assert {"window", "warmup", "h0"}.isdisjoint(spec.metadata) and "window" in json.loads(
        spec.metadata["streamer.state"]
    )
    assert json.loads(spec.metadata["streamer.keyword.openwakeword"])["classifiers"][0]["source"] == source.name
    report = run_selftest(path)
    assert report.ok, report


def test_streaming_equals_openwakewords_classifier_after_the_warmup(converted):
    source, path, classifier = converted
    rng = np.random.default_rng(4)
    audio = np.clip(speechlike(6.0, 5) * 32768, -32768, 32767).astype(np.int16)
    pipeline, outputs, start = Pipeline(path), [], 0
    while start < len(audio):  # any chunking: sizes that cut steps anywhere
        size = int(rng.integers(1, 5000))
        outputs.append(pipeline.push({"mic": audio[start : start + size]})["mic"])
        start += size
    streamed = np.concatenate(outputs)
    assert streamed.shape == (75, len(classifier.labels))
    reference = reference_scores(source, audio.astype(np.float32) / 32768, classifier.window)
    warm = classifier.warmup_steps - 1  # the first step whose window holds only openWakeWord's embeddings
    if classifier.sigmoid:
        np.testing.assert_allclose(streamed[warm:, 1], reference[warm - classifier.window + 1 :, 0], atol=1e-5)
    else:
        np.testing.assert_allclose(streamed[warm:], reference[warm - classifier.window + 1 :], atol=1e-5)
    assert np.array_equal(streamed[:warm, 0], np.ones(warm, np.float32))  # the warm-up never fires
    np.testing.assert_allclose(streamed.sum(axis=1), 1.0, atol=1e-5)


def _classifier_file(path: Path, input_shape: list[int], mix_rows: bool = False) -> Path:
    """A tiny classifier: mean over the window and features → sigmoid; `mix_rows` adds the batch's mean."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [input_shape[0], 1])
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0)]
    nodes.append(helper.make_node("Unsqueeze", ["m", "one"], ["m1"]))
    last = "m1"
    if mix_rows:
        nodes.append(helper.make_node("ReduceMean", ["m1"], ["batch_mean"], axes=[0], keepdims=1))
        nodes.append(helper.make_node("Add", ["m1", "batch_mean"], ["mixed"]))
        last = "mixed"
    nodes.append(helper.make_node("Sigmoid", [last], ["y"]))
    one = onnx.numpy_helper.from_array(np.array([1], np.int64), "one")
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_files_that_are_not_openwakeword_classifiers_are_refused(tmp_path):
    wrong = _classifier_file(tmp_path / "wrong.onnx", [1, 16, 40])
    with pytest.raises(ModelError, match=r"wrong.onnx: input x is \[1, 16, 40\], expected \[batch, window, 96\]"):
        openwakeword.convert([wrong], tmp_path / "out.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match=r"junk\.onnx: not an ONNX model"):
        openwakeword.convert([tmp_path / "junk.onnx"], tmp_path / "out.onnx")


def test_a_classifier_that_mixes_batch_rows_is_refused(tmp_path):
    mixing = _classifier_file(tmp_path / "mixing.onnx", [1, 16, 96], mix_rows=True)
    with pytest.raises(ModelError, match=r"mixing\.onnx: batched rows differ"):
        openwakeword.convert([mixing], tmp_path / "out.onnx")
    fine = _classifier_file(tmp_path / "my_word_v0.2.onnx", [1, 16, 96])
    (classifier,) = openwakeword.convert([fine], tmp_path / "out.onnx")
    assert classifier.labels == ["_background", "my_word"] and classifier.window == 16


def test_several_classifiers_share_one_embedding_and_keep_their_own_scores(tmp_path):
    """hey_jarvis (W 16, sigmoid) and timer (W 34, softmax) in one model: each keyword column equals that
    classifier's model alone; the background is the probability that none fires."""
    builtin = openwakeword.builtin_models()
    both = tmp_path / "both.onnx"
    classifiers = openwakeword.convert([builtin["hey_jarvis"], builtin["timer"]], both)
    spec = ModelSpec.load(both)
    assert spec.labels == ["_background", "hey_jarvis", *classifiers[1].labels[1:]]
    audio = np.clip(speechlike(6.0, 6) * 32768, -32768, 32767).astype(np.int16)
    together = Pipeline(both).push({"s": audio})["s"]
    alone = {}
    for name in ("hey_jarvis", "timer"):
        openwakeword.convert([builtin[name]], tmp_path / f"{name}.onnx")
        alone[name] = Pipeline(tmp_path / f"{name}.onnx").push({"s": audio})["s"]
    np.testing.assert_allclose(together[:, 1], alone["hey_jarvis"][:, 1], atol=1e-6)
    np.testing.assert_allclose(together[:, 2:], alone["timer"][:, 1:], atol=1e-6)
    np.testing.assert_allclose(together[:, 0], alone["hey_jarvis"][:, 0] * alone["timer"][:, 0], atol=1e-6)
    assert run_selftest(both).ok
    with pytest.raises(ModelError, match=r"labels \['hey_jarvis'\] occur twice"):
        openwakeword.convert([builtin["hey_jarvis"], builtin["hey_jarvis"]], tmp_path / "twice.onnx")
    renamed = openwakeword.convert(
        [builtin["hey_jarvis"], builtin["hey_jarvis"]], tmp_path / "twice.onnx", labels=["a", "b"]
    )
    assert [c.labels[1] for c in renamed] == ["a", "b"]
    with pytest.raises(ModelError, match="names its own classes"):
        openwakeword.convert([builtin["timer"]], tmp_path / "timer.onnx", labels=["my_timer"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streamer.cli.main", "import-openwakeword", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_writes_a_servable_model_and_its_card(tmp_path):
    done = _cli("hey_marvin", "--out", str(tmp_path / "m"), "--threshold", "0.7")
    assert done.returncode == 0, done.stderr
    assert "hey_marvin (1280 ms window)" in done.stdout
    spec = ModelSpec.load(tmp_path / "m" / "model.onnx")
    assert json.loads(spec.metadata["streamer.detection"])["threshold"] == 0.7
    card = (tmp_path / "m" / "README.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "hey_marvin_v0.1.onnx" in card
    refused = _cli("no_such_word", "--out", str(tmp_path / "x"))
    assert refused.returncode == 3 and "not one of the openwakeword" in refused.stderr
    bad = _cli("hey_marvin", "--out", str(tmp_path / "y"), "--threshold", "1.5")
    assert bad.returncode == 2 and "--threshold 1.5" in bad.stderr
