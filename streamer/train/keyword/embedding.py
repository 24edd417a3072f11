"""A frozen speech-embedding frontend inside the keyword model (openWakeWord's design, made stateful).

Google's `speech_embedding` network (Apache-2.0; the ONNX re-implementation shipped in the openwakeword 0.4.0
wheel, with its mel spectrogram) was trained on a large amount of real speech: features from it carry what a
few TTS voices cannot teach, which is how openWakeWord trains on synthetic speech alone. Here it becomes part of
one ONNX model that keeps the streamer contract:

    x [B, T, 1280]  (80 ms of 16 kHz audio per step, floats in [-1, 1): the "waveform" frontend)
    audio_ctx [1, B, 480] → audio_ctx_out     the previous step's last 480 samples (the STFT's overlap)
    mel_ring [1, B, 68·32] → mel_ring_out     the previous 68 mel frames (the embedding sees 76)
    h0 [layers, B, H] → hn                    the keyword GRU's state

Per step: 8 mel frames (512-sample STFT every 160 samples over the 1,760 samples ctx + x, power → 32 mel bands
→ 10·log10, floored at the step's own maximum − 80 dB, then /10 + 2, as openWakeWord streams it), one 96-d
embedding of the last 76 frames, one GRU step. Every state starts at zeros; nothing couples two streams (the
80 dB floor is per stream and step). `feature_graph` is the part before the GRU: training computes its
features with it, so training and serving share the arithmetic, and `combine` joins it to the exported GRU.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPENWAKEWORD_VERSION = "0.4.0"  # the wheel (installed with --no-deps, never imported) that carries the files
SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 1280  # one model step: 80 ms
CONTEXT_SAMPLES = 480
MEL_FRAMES_PER_STEP = 8
WINDOW_FRAMES = 76
RING_FRAMES = WINDOW_FRAMES - MEL_FRAMES_PER_STEP
MEL_BANDS = 32
EMBEDDING_DIM = 96
TOP_DB = 80.0
OPSET = 17  # the exporter's: ReduceMax takes its axes as an attribute here
INT16_FULL_SCALE = 32768.0  # the mel network was trained on int16-scaled samples
STATE_PAIRS = {"audio_ctx": "audio_ctx_out", "mel_ring": "mel_ring_out"}
PROVENANCE = {
    "embedding": "Google speech_embedding (arXiv:2002.01322), Apache-2.0, as re-implemented in ONNX by openWakeWord",
    "source": f"openwakeword=={OPENWAKEWORD_VERSION} wheel (PyPI): resources/models/melspectrogram.onnx, "
    "embedding_model.onnx",
    "frozen": True,
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


def _const(name: str, values: np.ndarray | list[int] | float) -> onnx.TensorProto:
    array = np.asarray(values, dtype=np.int64 if isinstance(values, list) else None)
    return numpy_helper.from_array(array, name)


def feature_graph() -> onnx.ModelProto:
    """x, audio_ctx, mel_ring → emb [B, T, 96], audio_ctx_out, mel_ring_out (see the module docstring)."""
    mel_path, embedding_path = model_files()
    mel = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(mel_path)).graph.initializer}
    real, imag, mel_weights = mel["0.stft.conv_real.weight"], mel["0.stft.conv_imag.weight"], mel["1.melW"]
    embedding = onnx.compose.add_prefix(onnx.load(str(embedding_path)), "embedding/")
    embedding_in = embedding.graph.input[0].name
    embedding_out = embedding.graph.output[0].name

    ring_size = RING_FRAMES * MEL_BANDS
    initializers = [
        numpy_helper.from_array(real, "stft_real"),
        numpy_helper.from_array(imag, "stft_imag"),
        numpy_helper.from_array(mel_weights, "mel_weights"),
        _const("i0", [0]),
        _const("i1", [1]),
        _const("i2", [2]),
        _const("minus1", [-1]),
        _const("ring_frames_neg", [-RING_FRAMES]),
        _const("context_neg", [-CONTEXT_SAMPLES]),
        _const("big", [2**62]),
        _const("bands", [MEL_BANDS]),
        _const("step_bands", [MEL_FRAMES_PER_STEP * MEL_BANDS]),
        _const("ring_shape_tail", [RING_FRAMES, MEL_BANDS]),
        _const("ring_flat", [ring_size]),
        _const("embedding_shape", [-1, WINDOW_FRAMES, MEL_BANDS, 1]),
        _const("embedding_dim", [EMBEDDING_DIM]),
        _const("window_offsets", np.arange(WINDOW_FRAMES, dtype=np.int64)[None, :]),
        _const("frames_per_step", np.array(MEL_FRAMES_PER_STEP, dtype=np.int64)),
        _const("zero_scalar", np.array(0, dtype=np.int64)),
        _const("one_scalar", np.array(1, dtype=np.int64)),
        numpy_helper.from_array(np.array(INT16_FULL_SCALE, np.float32), "full_scale"),
        numpy_helper.from_array(np.array(1e-10, np.float32), "power_floor"),
        numpy_helper.from_array(np.array(10.0 / np.log(10.0), np.float32), "db_per_neper"),
        numpy_helper.from_array(np.array(TOP_DB, np.float32), "top_db"),
        numpy_helper.from_array(np.array(10.0, np.float32), "ten"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["x_shape"]),
        n("Slice", ["x_shape", "i0", "i1"], ["batch"]),
        n("Slice", ["x_shape", "i1", "i2"], ["steps"]),
        n("Squeeze", ["steps", "i0"], ["steps_scalar"]),
        # audio = ctx ++ x, flattened per stream
        n("Squeeze", ["audio_ctx", "i0"], ["ctx"]),
        n("Concat", ["batch", "minus1"], ["flat_shape"], axis=0),
        n("Reshape", ["x", "flat_shape"], ["x_flat"]),
        n("Concat", ["ctx", "x_flat"], ["audio"], axis=1),
        n("Slice", ["audio", "context_neg", "big", "i1"], ["ctx_next"]),
        n("Unsqueeze", ["ctx_next", "i0"], ["audio_ctx_out"]),
        # 8·T mel frames in dB
        n("Mul", ["audio", "full_scale"], ["audio_scaled"]),
        n("Unsqueeze", ["audio_scaled", "i1"], ["audio_3d"]),
        n("Conv", ["audio_3d", "stft_real"], ["re"], kernel_shape=[512], strides=[160]),
        n("Conv", ["audio_3d", "stft_imag"], ["im"], kernel_shape=[512], strides=[160]),
        n("Mul", ["re", "re"], ["re2"]),
        n("Mul", ["im", "im"], ["im2"]),
        n("Add", ["re2", "im2"], ["power"]),
        n("Transpose", ["power"], ["power_t"], perm=[0, 2, 1]),
        n("MatMul", ["power_t", "mel_weights"], ["mel_power"]),
        n("Max", ["mel_power", "power_floor"], ["mel_floored"]),
        n("Log", ["mel_floored"], ["mel_ln"]),
        n("Mul", ["mel_ln", "db_per_neper"], ["mel_db"]),
        # the 80 dB floor below each step's own maximum, then openWakeWord's x / 10 + 2
        n("Concat", ["batch", "steps", "step_bands"], ["per_step_shape"], axis=0),
        n("Reshape", ["mel_db", "per_step_shape"], ["mel_steps"]),
        n("ReduceMax", ["mel_steps"], ["step_max"], axes=[2], keepdims=1),
        n("Sub", ["step_max", "top_db"], ["step_floor"]),
        n("Max", ["mel_steps", "step_floor"], ["mel_clipped"]),
        n("Div", ["mel_clipped", "ten"], ["mel_tenth"]),
        n("Add", ["mel_tenth", "two"], ["mel_scaled"]),
        n("Concat", ["batch", "minus1", "bands"], ["frames_shape"], axis=0),
        n("Reshape", ["mel_scaled", "frames_shape"], ["mel_frames"]),
        # the ring of previous frames ++ the new ones; step t's window is frames [8t, 8t + 76)
        n("Squeeze", ["mel_ring", "i0"], ["ring_flat_in"]),
        n("Concat", ["batch", "ring_shape_tail"], ["ring_shape"], axis=0),
        n("Reshape", ["ring_flat_in", "ring_shape"], ["ring"]),
        n("Concat", ["ring", "mel_frames"], ["all_frames"], axis=1),
        n("Slice", ["all_frames", "ring_frames_neg", "big", "i1"], ["ring_next"]),
        n("Concat", ["batch", "ring_flat"], ["ring_out_shape"], axis=0),
        n("Reshape", ["ring_next", "ring_out_shape"], ["ring_next_flat"]),
        n("Unsqueeze", ["ring_next_flat", "i0"], ["mel_ring_out"]),
        n("Range", ["zero_scalar", "steps_scalar", "one_scalar"], ["step_index"]),
        n("Mul", ["step_index", "frames_per_step"], ["step_start"]),
        n("Unsqueeze", ["step_start", "i1"], ["step_start_col"]),
        n("Add", ["step_start_col", "window_offsets"], ["window_index"]),
        n("Gather", ["all_frames", "window_index"], ["windows"], axis=1),
        n("Reshape", ["windows", "embedding_shape"], [embedding_in]),
        *embedding.graph.node,
        n("Concat", ["batch", "steps", "embedding_dim"], ["emb_shape"], axis=0),
        n("Reshape", [embedding_out, "emb_shape"], ["emb"]),
    ]
    floats = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "speech_embedding_features",
        [
            helper.make_tensor_value_info("x", floats, ["batch", "time", FRAME_SAMPLES]),
            helper.make_tensor_value_info("audio_ctx", floats, [1, "batch", CONTEXT_SAMPLES]),
            helper.make_tensor_value_info("mel_ring", floats, [1, "batch", ring_size]),
        ],
        [
            helper.make_tensor_value_info("emb", floats, ["batch", "time", EMBEDDING_DIM]),
            helper.make_tensor_value_info("audio_ctx_out", floats, [1, "batch", CONTEXT_SAMPLES]),
            helper.make_tensor_value_info("mel_ring_out", floats, [1, "batch", ring_size]),
        ],
        initializer=[*initializers, *embedding.graph.initializer],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class Embedder:
    """Runs `feature_graph` on whole signals: the features training uses, equal to what serving computes."""

    def __init__(self, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            feature_graph().SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, audio: np.ndarray, steps_per_call: int = 250) -> np.ndarray:
        """float32 audio in [-1, 1) at 16 kHz → embeddings [len // 1280, 96] (a trailing partial step dropped)."""
        steps = len(audio) // FRAME_SAMPLES
        frames = np.ascontiguousarray(audio[: steps * FRAME_SAMPLES], dtype=np.float32).reshape(1, steps, -1)
        ctx = np.zeros((1, 1, CONTEXT_SAMPLES), np.float32)
        ring = np.zeros((1, 1, RING_FRAMES * MEL_BANDS), np.float32)
        out = []
        for start in range(0, steps, steps_per_call):
            emb, ctx, ring = self.session.run(
                None, {"x": frames[:, start : start + steps_per_call], "audio_ctx": ctx, "mel_ring": ring}
            )
            out.append(emb[0])
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)


_EMBEDDERS: dict[int, Embedder] = {}


def embed(audio: np.ndarray) -> np.ndarray:
    """`Embedder()(audio)` with one session per process (safe in forked workers: each builds its own)."""
    pid = os.getpid()
    if pid not in _EMBEDDERS:
        _EMBEDDERS[pid] = Embedder()
    return _EMBEDDERS[pid](audio)


def combine(head_path: Path, out_path: Path, metadata: dict[str, str]) -> None:
    """`feature_graph` joined to an exported per-step head (x [B, T, 96], h0 → y, hn) as one contract model.

    The head's metadata is kept; its state pairs gain the feature graph's, the frontend becomes the waveform
    frontend, and `metadata` is added last."""
    from streamer.frontend.waveform import WaveformParams

    head = onnx.load(str(head_path))
    features = feature_graph()
    features.ir_version = head.ir_version
    merged = onnx.compose.merge_models(features, head, io_map=[("emb", "x")], prefix2="head/")
    kept = {p.key: p.value for p in head.metadata_props}
    states = json.loads(kept.get("streamer.state", '{"h0": "hn"}'))
    renames = {f"head/{name}": name for name in [*states, *states.values(), "y"]}
    for value_info in [*merged.graph.input, *merged.graph.output]:
        value_info.name = renames.get(value_info.name, value_info.name)
    for node in merged.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    kept["streamer.state"] = json.dumps({**STATE_PAIRS, **states})
    kept["streamer.frontend"] = json.dumps(WaveformParams(SAMPLE_RATE_HZ, FRAME_SAMPLES).to_dict())
    kept.update(metadata)
    del merged.metadata_props[:]
    for key, value in kept.items():
        merged.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out_path))
