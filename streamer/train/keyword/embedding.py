"""A frozen speech-embedding frontend inside the keyword model (openWakeWord's design, made stateful).

Google's `speech_embedding` network (Apache-2.0; the ONNX re-implementation shipped in the openwakeword 0.4.0
wheel, with its mel spectrogram) was trained on a large amount of real speech: features from it carry what a
few TTS voices cannot teach, which is how openWakeWord trains on synthetic speech alone. openWakeWord re-runs it on
the last 76 mel frames every 80 ms; here it runs as a streaming network instead, inside one ONNX model that keeps
the streamer contract:

    x [B, T, 1280]            80 ms of 16 kHz audio per step, floats in [-1, 1) (the "waveform" frontend)
    audio_ctx [1, B, 480]     the previous step's last 480 samples (the STFT's overlap)
    conv<i> [1, B, C·2·W]     the last two input rows of each convolution with 3 rows in time
    h0 [layers, B, H]         the keyword GRU's state (from the exported head, `combine`)

Per step: 8 mel frames (512-sample STFT every 160 samples over the 1,760 samples ctx + x, power → 32 mel bands
→ 10·log10, floored at the step's own maximum − 80 dB, then /10 + 2, as openWakeWord streams it), then the
embedding network on the 8 new frames only: each time-convolution sees its cached rows before the new ones, and
its max-pools (stride 2 in time at three levels) pair rows the way the 76-frame window does, because a step is 8
frames (the window's rows at each level move by a whole number of rows per step). So after the first 76 frames
(10 steps) every embedding equals openWakeWord's window computation, at about a seventh of its cost; before that,
the zero states stand in for the window's history. Nothing couples two streams (the 80 dB floor is per stream
and step). `feature_graph` is the part before the GRU: training computes its features with it, so training and
serving share the arithmetic, and `combine` joins it to the exported GRU.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPENWAKEWORD_VERSION = "0.4.0"  # the wheel (installed with --no-deps, never imported) that carries the files
SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 1280  # one model step: 80 ms
CONTEXT_SAMPLES = 480
STFT_WINDOW = 512  # openWakeWord's STFT: 512-sample frames every 160 samples
STFT_HOP = 160
MEL_FRAMES_PER_STEP = 8
MEL_BANDS = 32
EMBEDDING_DIM = 96
TOP_DB = 80.0
OPSET = 17  # the exporter's: ReduceMax takes its axes as an attribute here
INT16_FULL_SCALE = 32768.0  # the mel network was trained on int16-scaled samples
ROW_WISE = ("Relu", "BatchNormalization", "LeakyRelu", "Max", "MaxPool")  # ops that need no cache in time
PROVENANCE = {
    "embedding": "Google speech_embedding (arXiv:2002.01322), Apache-2.0, as re-implemented in ONNX by openWakeWord",
    "source": f"openwakeword=={OPENWAKEWORD_VERSION} wheel (PyPI): resources/models/melspectrogram.onnx, "
    "embedding_model.onnx",
    "frozen": True,
    "streaming": "time convolutions with cached rows; equal to the 76-frame window after 10 steps",
}


def model_files() -> tuple[Path, Path]:
    """The mel and embedding ONNX files inside the installed openwakeword wheel (located, not imported)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the speech-embedding frontend needs openwakeword=={OPENWAKEWORD_VERSION} "
            f"(pip install --no-deps openwakeword=={OPENWAKEWORD_VERSION}; `make setup` does)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "models"
    files = folder / "melspectrogram.onnx", folder / "embedding_model.onnx"
    for path in files:
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: install openwakeword=={OPENWAKEWORD_VERSION}")
    return files


class GraphBuilder:
    """Nodes, constants and state pairs of the graph being built; names are unique by construction."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.states: list[tuple[str, str, int]] = []  # input name, output name, per-stream size
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray | list[int] | float, hint: str = "c") -> str:
        array = np.asarray(value, dtype=np.int64 if isinstance(value, list) else None)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def state(self, name_in: str, size: int) -> tuple[str, str]:
        """A new state pair: its [1, B, size] input as [B, size], and the name its output must be given."""
        name_out = f"{name_in}_out"
        self.states.append((name_in, name_out, size))
        return self.op("Squeeze", [name_in, self.const([0])]), name_out

    def output_state(self, value: str, name_out: str, batch: str, size: int) -> None:
        flat = self.op("Reshape", [value, self.op("Concat", [batch, self.const([size])], axis=0)])
        self.nodes.append(helper.make_node("Unsqueeze", [flat, self.const([0])], [name_out]))

    def model(
        self, name: str, x: tuple[str, int], y: tuple[str, int], opsets: Sequence[onnx.OperatorSetIdProto] = ()
    ) -> onnx.ModelProto:
        """The graph as a checked model: x [batch, time, n] and the states in, y [batch, time, m] and the states
        out, the pairs in metadata `streamer.state`."""
        floats = TensorProto.FLOAT
        inputs = [helper.make_tensor_value_info(x[0], floats, ["batch", "time", x[1]])]
        outputs = [helper.make_tensor_value_info(y[0], floats, ["batch", "time", y[1]])]
        for name_in, name_out, size in self.states:
            inputs.append(helper.make_tensor_value_info(name_in, floats, [1, "batch", size]))
            outputs.append(helper.make_tensor_value_info(name_out, floats, [1, "batch", size]))
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), *opsets])
        model.ir_version = 8
        model.metadata_props.add(key="streamer.state", value=json.dumps({i: o for i, o, _ in self.states}))
        onnx.checker.check_model(model)
        return model


def _mel_frames(g: GraphBuilder, x: str, batch: str, steps: str, mel: dict[str, np.ndarray]) -> str:
    """x [B, T, 1280] → mel frames [B, 8T, 32] (openWakeWord's transform), carrying audio_ctx."""
    ctx, ctx_out = g.state("audio_ctx", CONTEXT_SAMPLES)
    flat = g.op("Reshape", [x, g.op("Concat", [batch, g.const([-1])], axis=0)])
    audio = g.op("Concat", [ctx, flat], axis=1)
    context = g.op("Slice", [audio, g.const([-CONTEXT_SAMPLES]), g.const([2**62]), g.const([1])])
    g.output_state(context, ctx_out, batch, CONTEXT_SAMPLES)
    # The STFT as one matrix product: frame k is samples [160k, 160k + 512), i.e. rows k, k+1, k+2 and the first
    # 32 samples of row k+3 of the signal cut into 160-sample rows. The matrix's columns are the two
    # convolutions' filters (the window folded in) for the bins the mel filters use (2-121 of 257): one
    # [B·8T, 512] @ [512, 240] product costs a quarter of the two convolutions, which onnxruntime runs as
    # 8-column products per stream. Equal to them up to float rounding (~1e-7 of the embedding's range).
    samples = g.op("Mul", [audio, g.const(INT16_FULL_SCALE)])
    rows = g.op("Reshape", [samples, g.op("Concat", [batch, g.const([-1, STFT_HOP])], axis=0)])
    pieces = [g.op("Slice", [rows, g.const([k]), g.const([k - 3]), g.const([1])]) for k in range(3)]
    rest = [g.const([3, 0]), g.const([2**62, STFT_WINDOW - 3 * STFT_HOP]), g.const([1, 2])]
    pieces.append(g.op("Slice", [rows, *rest]))
    frames = g.op("Concat", pieces, axis=2)  # [B, 8T, 512]
    used = np.flatnonzero(mel["1.melW"].any(axis=1))
    first, end = int(used[0]), int(used[-1]) + 1
    real_filters = mel["0.stft.conv_real.weight"][first:end, 0, :]
    imag_filters = mel["0.stft.conv_imag.weight"][first:end, 0, :]
    filters = np.ascontiguousarray(np.concatenate([real_filters, imag_filters]).T)  # [512, 2·bins]
    spectrum = g.op("MatMul", [frames, g.const(filters)])
    bins = end - first
    real = g.op("Slice", [spectrum, g.const([0]), g.const([bins]), g.const([2])])
    imag = g.op("Slice", [spectrum, g.const([bins]), g.const([2 * bins]), g.const([2])])
    power = g.op("Add", [g.op("Mul", [real, real]), g.op("Mul", [imag, imag])])
    mel_power = g.op("MatMul", [power, g.const(np.ascontiguousarray(mel["1.melW"][first:end]))])
    db = g.op("Mul", [g.op("Log", [g.op("Max", [mel_power, g.const(1e-10)])]), g.const(10.0 / np.log(10.0))])
    per_step = g.op("Reshape", [db, g.op("Concat", [batch, steps, g.const([MEL_FRAMES_PER_STEP * MEL_BANDS])], axis=0)])
    floor = g.op("Sub", [g.op("ReduceMax", [per_step], axes=[2], keepdims=1), g.const(TOP_DB)])
    scaled = g.op("Add", [g.op("Div", [g.op("Max", [per_step, floor]), g.const(10.0)]), g.const(2.0)])
    return g.op("Reshape", [scaled, g.op("Concat", [batch, g.const([-1, MEL_BANDS])], axis=0)])


def _streaming_embedding(g: GraphBuilder, frames: str, batch: str, embedding: onnx.ModelProto) -> str:
    """mel frames [B, 8T, 32] → embeddings [B, T, 96]: openWakeWord's embedding network, node by node, with a
    two-row cache before each convolution that is 3 rows tall in time (see the module docstring)."""
    weights = {t.name: numpy_helper.to_array(t) for t in embedding.graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(embedding)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input]
    }
    current = frames
    last = len(embedding.graph.node) - 1
    for index, node in enumerate(embedding.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Pad":  # the frequency axis padded by one zero band each side: [B, rows, 34, 1]
            nhwc = g.op("Unsqueeze", [current, g.const([3])])
            current = g.op("Pad", [nhwc, g.const(weights[node.input[1]].tolist())])
        elif node.op_type == "Reshape" and index == last:  # [B, 96, T, 1] → [B, T, 96]
            current = g.op("Transpose", [g.op("Squeeze", [current, g.const([3])])], perm=[0, 2, 1])
        elif node.op_type == "Reshape":  # [B, rows, 34, 1] → NCHW [B, 1, rows, 34]
            current = g.op("Transpose", [current], perm=[0, 3, 1, 2])
        elif node.op_type == "Conv":
            inputs = [current, *(g.const(weights[name]) for name in node.input[1:])]
            rows = int(attrs["kernel_shape"][0])
            pads = attrs.get("pads", [0, 0, 0, 0])
            if pads[0] or pads[2] or attrs.get("strides", [1, 1])[0] != 1:
                raise ValueError(f"{node.name}: a convolution padded or strided in time cannot stream this way")
            if rows > 1:  # rows of the previous steps first; the convolution is valid in time
                channels, width = shapes[node.input[0]][1], shapes[node.input[0]][3]
                size = channels * (rows - 1) * width
                cache, cache_out = g.state(f"conv{len(g.states)}", size)
                shape = g.op("Concat", [batch, g.const([channels, rows - 1, width])], axis=0)
                joined = g.op("Concat", [g.op("Reshape", [cache, shape]), current], axis=2)
                tail = g.op("Slice", [joined, g.const([1 - rows]), g.const([2**62]), g.const([2])])
                g.output_state(tail, cache_out, batch, size)
                inputs[0] = joined
            current = g.op("Conv", inputs, **attrs)
        elif node.op_type in ROW_WISE:  # row by row (MaxPool's pairs line up: module docstring), weights as they are
            extra = [g.const(weights[name]) if name in weights else name for name in node.input[1:]]
            current = g.op(node.op_type, [current, *extra], **attrs)
        else:
            raise ValueError(f"{node.name}: {node.op_type} is not known to stream row by row")
    return current


def feature_graph() -> onnx.ModelProto:
    """x, audio_ctx, conv<i> → emb [B, T, 96] and every state's output (see the module docstring)."""
    mel_path, embedding_path = model_files()
    mel = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(mel_path)).graph.initializer}
    embedding = onnx.load(str(embedding_path))
    g = GraphBuilder()
    shape = g.op("Shape", ["x"])
    batch = g.op("Slice", [shape, g.const([0]), g.const([1])])
    steps = g.op("Slice", [shape, g.const([1]), g.const([2])])
    frames = _mel_frames(g, "x", batch, steps, mel)
    g.nodes.append(helper.make_node("Identity", [_streaming_embedding(g, frames, batch, embedding)], ["emb"]))
    return g.model("speech_embedding_features", ("x", FRAME_SAMPLES), ("emb", EMBEDDING_DIM))


def state_pairs(model: onnx.ModelProto) -> dict[str, str]:
    return dict(json.loads(next(p.value for p in model.metadata_props if p.key == "streamer.state")))


class Embedder:
    """Runs `feature_graph` on whole signals: the features training uses, equal to what serving computes."""

    def __init__(self, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model = feature_graph()
        self.pairs = state_pairs(model)
        self.sizes = {v.name: v.type.tensor_type.shape.dim[2].dim_value for v in model.graph.input[1:]}
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, audio: np.ndarray, steps_per_call: int = 250) -> np.ndarray:
        """float32 audio in [-1, 1) at 16 kHz → embeddings [len // 1280, 96] (a trailing partial step dropped)."""
        steps = len(audio) // FRAME_SAMPLES
        frames = np.ascontiguousarray(audio[: steps * FRAME_SAMPLES], dtype=np.float32).reshape(1, steps, -1)
        states = {name: np.zeros((1, 1, size), np.float32) for name, size in self.sizes.items()}
        outputs = ["emb", *self.pairs.values()]
        out = []
        for start in range(0, steps, steps_per_call):
            emb, *carried = self.session.run(outputs, {"x": frames[:, start : start + steps_per_call], **states})
            states = dict(zip(self.pairs, carried, strict=True))
            out.append(emb[0])
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)


_EMBEDDERS: dict[int, Embedder] = {}


def embed(audio: np.ndarray) -> np.ndarray:
    """`Embedder()(audio)` with one session per process (safe in forked workers: each builds its own)."""
    pid = os.getpid()
    if pid not in _EMBEDDERS:
        _EMBEDDERS[pid] = Embedder()
    return _EMBEDDERS[pid](audio)


def combine(head_path: Path | Sequence[Path], out_path: Path, metadata: dict[str, str]) -> None:
    """`feature_graph` joined to exported per-step heads (x [B, T, 96], h0 → y, hn) as one contract model.

    Several heads (an ensemble: the same recipe, other seeds) share the features; y is the mean of their y and
    each head's states keep their names with `_<index>` added. The first head's metadata is kept; its state pairs
    gain the feature graph's, the frontend becomes the waveform frontend, and `metadata` is added last."""

    paths = [head_path] if isinstance(head_path, Path) else list(head_path)
    combine_models([onnx.load(str(path)) for path in paths], out_path, metadata)


def combine_models(heads: Sequence[onnx.ModelProto], out_path: Path, metadata: dict[str, str]) -> None:
    """`combine` for heads already in memory."""
    from streamer.frontend.waveform import WaveformParams

    features = feature_graph()
    pairs = state_pairs(features)
    del features.metadata_props[:]  # the merged model's metadata is written below
    features.ir_version = heads[0].ir_version
    kept = {p.key: p.value for p in heads[0].metadata_props}
    states = json.loads(kept.get("streamer.state", '{"h0": "hn"}'))
    if len(heads) == 1:
        merged = onnx.compose.merge_models(features, heads[0], io_map=[("emb", "x")], prefix2="head/")
        _rename(merged.graph, {f"head/{name}": name for name in [*states, *states.values(), "y"]})
    else:
        merged, states = _ensemble(features, heads, states)
    kept["streamer.state"] = json.dumps({**pairs, **states})
    kept["streamer.frontend"] = json.dumps(WaveformParams(SAMPLE_RATE_HZ, FRAME_SAMPLES).to_dict())
    kept.update(metadata)
    del merged.metadata_props[:]
    for key, value in kept.items():
        merged.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out_path))


def _rename(graph: onnx.GraphProto, renames: dict[str, str]) -> None:
    """Rename tensors in the graph's inputs, outputs and nodes (names not in `renames` stay)."""
    for value_info in [*graph.input, *graph.output]:
        value_info.name = renames.get(value_info.name, value_info.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]


def _ensemble(
    features: onnx.ModelProto, heads: Sequence[onnx.ModelProto], states: dict[str, str]
) -> tuple[onnx.ModelProto, dict[str, str]]:
    """The feature graph with every head reading `emb`, y their mean; returns the model and the heads' state pairs."""
    graph = features.graph
    emb_output = next(o for o in graph.output if o.name == "emb")
    graph.output.remove(emb_output)
    pairs: dict[str, str] = {}
    ys = []
    for index, head in enumerate(heads):
        prefix = f"head{index}/"
        prefixed = onnx.compose.add_prefix(head, prefix)
        _rename(prefixed.graph, {f"{prefix}{name}": f"{name}_{index}" for name in [*states, *states.values()]})
        graph.node.append(helper.make_node("Identity", ["emb"], [f"{prefix}x"]))
        graph.node.extend(prefixed.graph.node)
        graph.initializer.extend(prefixed.graph.initializer)
        graph.input.extend(i for i in prefixed.graph.input if i.name != f"{prefix}x")
        graph.output.extend(o for o in prefixed.graph.output if o.name != f"{prefix}y")
        ys.append(f"{prefix}y")
        pairs.update({f"{name_in}_{index}": f"{name_out}_{index}" for name_in, name_out in states.items()})
    graph.node.append(helper.make_node("Mean", ys, ["y"]))
    y_info = next(o for o in heads[0].graph.output if o.name == "y")
    graph.output.insert(0, y_info)
    opsets = {o.domain: o.version for m in [features, *heads] for o in m.opset_import}
    del features.opset_import[:]
    features.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in opsets.items())
    return features, pairs
