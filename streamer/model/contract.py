"""Loads an ONNX file and validates the stateful model contract (CONTRACT.md §1) using onnxruntime only.

A model is `x [batch, time, features] + states -> y [batch, time, classes] + states'`, with state pairs from
metadata `streamer.state` (or h0→hn, c0→cn) and their batch axis at `streamer.state_batch_axis` (default 1).
Every rule that fails raises ModelError naming the file, the tensor, what was found and what was expected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streamer.errors import ModelError

FLOAT = "tensor(float)"
DEFAULT_STATE_PAIRS = {"h0": "hn", "c0": "cn"}
PROBE_BATCH = 2
PROBE_STEPS = 3


@dataclass(frozen=True)
class StatePair:
    """One recurrent state tensor: fed as `input`, returned as `output`; `shape` has 1 at the batch axis."""

    input: str
    output: str
    shape: tuple[int, ...]
    batch_axis: int

    def zeros(self, batch: int) -> np.ndarray:
        shape = list(self.shape)
        shape[self.batch_axis] = batch
        return np.zeros(shape, dtype=np.float32)


@dataclass(frozen=True)
class ModelSpec:
    """What the contract says about one model file, validated."""

    path: Path
    data_input: str
    output: str
    feature_dim: int
    num_classes: int
    labels: list[str]
    scores: str
    states: list[StatePair]
    frontend: dict[str, Any] | None
    metadata: dict[str, str] = field(repr=False)
    fingerprint: str = field(repr=False)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Validate `path` with a CPU session of its own."""
        return cls.from_session(path, open_session(path))

    @classmethod
    def from_session(cls, path: str | Path, session: ort.InferenceSession) -> ModelSpec:
        """Validate the model behind an already opened session."""
        return _Validator(Path(path), session).validate()

    @property
    def output_names(self) -> list[str]:
        return [self.output, *(s.output for s in self.states)]


def open_session(
    path: str | Path, providers: list[str] | None = None, intra_op_threads: int = 1
) -> ort.InferenceSession:
    """An onnxruntime session with our defaults (one intra-op thread: a second gains little here and collapses
    under load); a file that onnxruntime cannot read is a ModelError."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model {path}: no such file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
        raise ModelError(f"model {path}: onnxruntime cannot load it: {exc}") from exc


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_dynamic(dim: object) -> bool:
    return not isinstance(dim, int) or dim < 0


def _show(shape: list[object]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else repr(d) for d in shape) + "]"


class _Validator:
    """Applies the contract's rules one by one; the first broken rule raises."""

    def __init__(self, path: Path, session: ort.InferenceSession) -> None:
        self.path = path
        self.session = session
        self.inputs = {i.name: i for i in session.get_inputs()}
        self.outputs = {o.name: o for o in session.get_outputs()}
        self.metadata: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)

    def fail(self, message: str) -> ModelError:
        return ModelError(f"model {self.path}: {message}")

    def validate(self) -> ModelSpec:
        pairs = self._state_pairs()
        batch_axis = self._state_batch_axis()
        data_input = self._data_input(pairs)
        feature_dim = self._check_data_input(data_input)
        output = self._score_output(pairs)
        states = [self._check_state(i, o, batch_axis) for i, o in pairs.items()]
        num_classes = self._probe(data_input, feature_dim, output, states)
        labels = self._labels(num_classes)
        return ModelSpec(
            path=self.path,
            data_input=data_input,
            output=output,
            feature_dim=feature_dim,
            num_classes=num_classes,
            labels=labels,
            scores=self._scores_kind(),
            states=states,
            frontend=self._frontend(),
            metadata=self.metadata,
            fingerprint=file_fingerprint(self.path),
        )

    def _json(self, key: str) -> Any:
        try:
            return json.loads(self.metadata[key])
        except json.JSONDecodeError as exc:
            raise self.fail(f"metadata {key} is not valid JSON ({exc}): {self.metadata[key]!r}") from exc

    def _state_pairs(self) -> dict[str, str]:
        if "streamer.state" in self.metadata:
            pairs = self._json("streamer.state")
            if (
                not isinstance(pairs, dict)
                or not pairs
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items())
            ):
                raise self.fail(
                    f"metadata streamer.state is {self.metadata['streamer.state']!r}, "
                    'expected a non-empty JSON object of input name → output name, e.g. {"h0": "hn"}'
                )
        else:
            pairs = {i: o for i, o in DEFAULT_STATE_PAIRS.items() if i in self.inputs}
            if not pairs:
                raise self.fail(
                    f"no state pair found: inputs are {sorted(self.inputs)}, expected h0 (and c0) inputs "
                    "or metadata streamer.state naming the state inputs and outputs"
                )
        for state_in, state_out in pairs.items():
            if state_in not in self.inputs:
                raise self.fail(
                    f"state input {state_in!r} (paired with output {state_out!r}) is missing; "
                    f"inputs are {sorted(self.inputs)}"
                )
            if state_out not in self.outputs:
                raise self.fail(
                    f"state output {state_out!r} (paired with input {state_in!r}) is missing; "
                    f"outputs are {sorted(self.outputs)}"
                )
        return pairs

    def _state_batch_axis(self) -> int:
        raw = self.metadata.get("streamer.state_batch_axis", "1")
        try:
            return int(raw)
        except ValueError:
            raise self.fail(f"metadata streamer.state_batch_axis is {raw!r}, expected an integer") from None

    def _data_input(self, pairs: dict[str, str]) -> str:
        data = [name for name in self.inputs if name not in pairs]
        if len(data) != 1:
            raise self.fail(f"expected exactly one data input besides the state inputs {sorted(pairs)}, found {data}")
        return data[0]

    def _check_data_input(self, name: str) -> int:
        node = self.inputs[name]
        if node.type != FLOAT:
            raise self.fail(f"data input {name!r} has type {node.type}, expected float32 ({FLOAT})")
        shape = list(node.shape)
        if len(shape) != 3:
            raise self.fail(f"data input {name!r} has shape {_show(shape)}, expected [batch, time, features]")
        if not _is_dynamic(shape[0]):
            raise self.fail(f"data input {name!r} has a static batch axis {shape[0]}, expected a dynamic axis")
        if not _is_dynamic(shape[1]):
            raise self.fail(f"data input {name!r} has a static time axis {shape[1]}, expected a dynamic axis")
        if _is_dynamic(shape[2]):
            raise self.fail(f"data input {name!r} has a dynamic feature axis {shape[2]!r}, expected a fixed size")
        return int(shape[2])

    def _score_output(self, pairs: dict[str, str]) -> str:
        state_outputs = set(pairs.values())
        candidates = [name for name in self.outputs if name not in state_outputs]
        if not candidates:
            raise self.fail("no score output: every output is a state output")
        name = self.metadata.get("streamer.output", candidates[0])
        if name not in candidates:
            raise self.fail(f"metadata streamer.output names {name!r}, expected one of {candidates}")
        node = self.outputs[name]
        if node.type != FLOAT:
            raise self.fail(f"output {name!r} has type {node.type}, expected float32 ({FLOAT})")
        if len(node.shape) != 3:
            raise self.fail(f"output {name!r} has shape {_show(list(node.shape))}, expected [batch, time, classes]")
        return name

    def _check_state(self, state_in: str, state_out: str, batch_axis: int) -> StatePair:
        node_in, node_out = self.inputs[state_in], self.outputs[state_out]
        for node in (node_in, node_out):
            if node.type != FLOAT:
                raise self.fail(f"state tensor {node.name!r} has type {node.type}, expected float32 ({FLOAT})")
        shape_in, shape_out = list(node_in.shape), list(node_out.shape)
        if not 0 <= batch_axis < len(shape_in):
            raise self.fail(
                f"state input {state_in!r} has shape {_show(shape_in)}: no batch axis {batch_axis} "
                "(metadata streamer.state_batch_axis)"
            )
        if not _is_dynamic(shape_in[batch_axis]):
            raise self.fail(
                f"state input {state_in!r} has a static batch axis {batch_axis} of size {shape_in[batch_axis]} "
                f"in shape {_show(shape_in)}, expected a dynamic axis"
            )
        for axis, dim in enumerate(shape_in):
            if axis != batch_axis and _is_dynamic(dim):
                raise self.fail(
                    f"state input {state_in!r} has a dynamic axis {axis} in shape {_show(shape_in)}; "
                    f"only the batch axis {batch_axis} may be dynamic"
                )
        if len(shape_out) != len(shape_in) or any(
            a != b
            for i, (a, b) in enumerate(zip(shape_in, shape_out, strict=True))
            if i != batch_axis and not _is_dynamic(b)
        ):
            raise self.fail(
                f"state output {state_out!r} has shape {_show(shape_out)}, "
                f"expected the shape of its input {state_in!r} {_show(shape_in)}"
            )
        shape = tuple(1 if i == batch_axis else int(d) for i, d in enumerate(shape_in))
        return StatePair(state_in, state_out, shape, batch_axis)

    def _probe(self, data_input: str, feature_dim: int, output: str, states: list[StatePair]) -> int:
        """Runs the model once on zeros: shapes the file declares loosely must still come out right."""
        feeds = {data_input: np.zeros((PROBE_BATCH, PROBE_STEPS, feature_dim), np.float32)}
        feeds.update({s.input: s.zeros(PROBE_BATCH) for s in states})
        names = [output, *(s.output for s in states)]
        try:
            results = self.session.run(names, feeds)
        except Exception as exc:  # onnxruntime's errors are untyped
            raise self.fail(
                f"a probe run with batch {PROBE_BATCH} and {PROBE_STEPS} steps failed "
                f"(is an axis fixed inside the graph?): {exc}"
            ) from exc
        scores = results[0]
        if scores.shape[:2] != (PROBE_BATCH, PROBE_STEPS):
            raise self.fail(
                f"output {output!r} came back with shape {list(scores.shape)} for input "
                f"[{PROBE_BATCH}, {PROBE_STEPS}, {feature_dim}], expected [{PROBE_BATCH}, {PROBE_STEPS}, classes]"
            )
        for state, value in zip(states, results[1:], strict=True):
            expected = state.zeros(PROBE_BATCH).shape
            if value.shape != expected:
                raise self.fail(
                    f"state output {state.output!r} came back with shape {list(value.shape)} at batch "
                    f"{PROBE_BATCH}, expected {list(expected)} (the shape of state input {state.input!r})"
                )
        return int(scores.shape[2])

    def _labels(self, num_classes: int) -> list[str]:
        if "streamer.labels" not in self.metadata:
            return [str(i) for i in range(num_classes)]
        labels = self._json("streamer.labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise self.fail(
                f"metadata streamer.labels is {self.metadata['streamer.labels']!r}, expected a JSON list of strings"
            )
        if len(labels) != num_classes:
            raise self.fail(
                f"metadata streamer.labels has {len(labels)} names, expected {num_classes} "
                "(the size of the score output's class axis)"
            )
        return labels

    def _scores_kind(self) -> str:
        kind = self.metadata.get("streamer.scores", "logits")
        if kind not in ("logits", "probabilities"):
            raise self.fail(f"metadata streamer.scores is {kind!r}, expected 'logits' or 'probabilities'")
        return kind

    def _frontend(self) -> dict[str, Any] | None:
        if "streamer.frontend" not in self.metadata:
            return None
        frontend = self._json("streamer.frontend")
        if not isinstance(frontend, dict) or not isinstance(frontend.get("kind"), str):
            raise self.fail(
                f"metadata streamer.frontend is {self.metadata['streamer.frontend']!r}, "
                'expected a JSON object with a "kind", e.g. {"kind": "logmel", ...}'
            )
        return frontend
