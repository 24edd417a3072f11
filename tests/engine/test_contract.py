"""Every rule of the model contract, broken one at a time, gives its promised error (file, tensor, found, expected)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from streamer.errors import ModelError
from streamer.model.contract import ModelSpec

F, H, C = 4, 3, 2


def build(
    path: Path,
    *,
    x_type: int = TensorProto.FLOAT,
    x_shape: tuple[object, ...] = ("batch", "time", F),
    h_in_shape: tuple[object, ...] = (1, "batch", H),
    h_out_shape: tuple[object, ...] = (1, "batch", H),
    h_type: int = TensorProto.FLOAT,
    state_name: str = "h0",
    metadata: dict[str, str] | None = None,
    double_state: bool = False,
) -> Path:
    """y = x @ W (per step); hn = h0 + 1: the smallest stateful graph, with knobs to break each rule."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [F, C], np.ones(F * C, np.float32).tolist())
    one = helper.make_tensor("one", h_type, [], [1])
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["xf", "W"], ["y"]),
        helper.make_node("Add", [state_name, "one"], ["hn_one" if double_state else "hn"]),
    ]
    if double_state:  # the state really comes back with twice the layers
        nodes.append(helper.make_node("Concat", ["hn_one", "hn_one"], ["hn"], axis=0))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", x_type, list(x_shape)),
            helper.make_tensor_value_info(state_name, h_type, list(h_in_shape)),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", C]),
            helper.make_tensor_value_info("hn", h_type, list(h_out_shape)),
        ],
        initializer=[w, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def test_a_good_tiny_model_loads(tmp_path: Path) -> None:
    spec = ModelSpec.load(build(tmp_path / "ok.onnx", metadata={"streamer.labels": '["yes", "no"]'}))
    assert (spec.feature_dim, spec.num_classes, spec.labels) == (F, C, ["yes", "no"])
    assert spec.states[0].input == "h0" and spec.states[0].shape == (1, 1, H)


CASES = {
    "static batch axis": (dict(x_shape=(5, "time", F)), "data input 'x' has a static batch axis 5, expected a dynamic"),
    "static time axis": (dict(x_shape=("batch", 7, F)), "data input 'x' has a static time axis 7"),
    "non-float data input": (dict(x_type=TensorProto.INT64), "data input 'x' has type tensor(int64), expected float32"),
    "missing state pair": (dict(state_name="memory"), "no state pair found: inputs are ['memory', 'x']"),
    "metadata names a missing state": (
        dict(metadata={"streamer.state": json.dumps({"h0": "h_out"})}),
        "state output 'h_out' (paired with input 'h0') is missing",
    ),
    "state shape mismatch": (
        dict(h_out_shape=(2, "batch", H), double_state=True),
        "state output 'hn' has shape [2, 'batch', 3], expected the shape of its input 'h0' [1, 'batch', 3]",
    ),
    "static state batch axis": (
        dict(h_in_shape=(1, 1, H), h_out_shape=(1, 1, H)),
        "state input 'h0' has a static batch axis 1 of size 1",
    ),
    "wrong state dtype": (
        dict(h_type=TensorProto.DOUBLE),
        "state tensor 'h0' has type tensor(double), expected float32",
    ),
    "labels length": (dict(metadata={"streamer.labels": '["a", "b", "c"]'}), "streamer.labels has 3 names, expected 2"),
    "labels not json": (dict(metadata={"streamer.labels": "a,b"}), "streamer.labels is not valid JSON"),
    "scores kind": (dict(metadata={"streamer.scores": "odds"}), "streamer.scores is 'odds'"),
    "frontend without kind": (dict(metadata={"streamer.frontend": "{}"}), 'expected a JSON object with a "kind"'),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_contract_violation_is_refused_with_its_message(tmp_path: Path, case: str) -> None:
    knobs, message = CASES[case]
    path = build(tmp_path / "bad.onnx", **knobs)  # type: ignore[arg-type]
    with pytest.raises(ModelError) as caught:
        ModelSpec.load(path)
    assert str(caught.value).startswith(f"model {path}: ")
    assert message in str(caught.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file"):
        ModelSpec.load(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(ModelError, match="onnxruntime cannot load it"):
        ModelSpec.load(tmp_path / "junk.onnx")
