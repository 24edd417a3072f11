"""Serve openWakeWord models statefully: their classifiers on the streaming speech embedding, as one contract model.

openWakeWord's wake-word models (the six in the openwakeword 0.4.0 wheel, and the many its users train with its
notebook) are small classifiers over the last W speech embeddings (W = 16, 1.28 s, for most), run every 80 ms.
`convert` wraps one or several in the same stateful graph the embedding keyword models use (embedding.py), so
the daemon serves them batched like any other model, the embedding is computed once per step for all of them (as
openWakeWord shares it between its models), and the classifiers' window becomes model state:

    x [B, T, 1280]            80 ms of 16 kHz audio per step (the waveform frontend)
    audio_ctx, conv<i>        the streaming embedding's state (embedding.feature_graph)
    window [1, B, (W-1)·96]   the previous W-1 embeddings (W: the widest classifier's window)
    warmup [1, B, 1]          steps seen, counted up to the longest warm-up
    → per step t and classifier c: c(emb[t-W_c+1 .. t]) → y [B, T, classes]

y's first column, `_background`, is the probability that no classifier fires (the product of theirs); then each
classifier's keyword columns: a sigmoid classifier's p, a softmax classifier's classes after its first (its
background). Until a classifier's window holds W_c embeddings that equal openWakeWord's own (the embedding's
first 9 steps stand on zero state) its keywords score 0: the first 9 + W_c steps (2.0 s for W_c = 16) of a stream
never fire. From then on each score equals openWakeWord's classifier on openWakeWord's window
(tests/keyword/test_openwakeword_import.py). Each classifier is made batchable: its batch axis becomes dynamic and
an `If` on its own score (openWakeWord's verifier models) becomes a `Where`, which computes both branches for
every row; `convert` then checks that rows do not depend on their neighbours.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from streamer.errors import ModelError
from streamer.train.keyword import embedding
from streamer.train.keyword.embedding import EMBEDDING_DIM, OPSET, GraphBuilder

BACKGROUND_LABEL = "_background"
EMBEDDING_WARMUP_STEPS = 9  # embeddings before this step index rest on zero state, not on audio
# openWakeWord's models are CC BY-NC-SA 4.0 (its README); a converted model is derived from one.
LICENCE_NOTE = (
    "openWakeWord's pre-trained models are licensed CC BY-NC-SA 4.0 (non-commercial); a model converted from one "
    "carries that licence. The speech embedding inside it is Apache-2.0."
)
DEFAULT_DETECTION = {
    "background": [BACKGROUND_LABEL],
    "threshold": 0.5,  # openWakeWord's documented default
    "smoothing_steps": 1,
    "patience_steps": 1,
    "refractory_s": 1.0,
}


@dataclass
class Classifier:
    """An openWakeWord classifier made batchable: `model` maps [n, window, 96] → [n, classes]."""

    model: onnx.ModelProto
    window: int
    labels: list[str]
    sigmoid: bool  # one output: the wake word's probability

    @property
    def warmup_steps(self) -> int:
        """Steps until every embedding in the window is openWakeWord's (the first scored step is this count)."""
        return EMBEDDING_WARMUP_STEPS + self.window


def builtin_models() -> dict[str, Path]:
    """The classifiers inside the installed openwakeword wheel, by name (`hey_jarvis`: .../hey_jarvis_v0.1.onnx)."""
    folder = embedding.model_files()[0].parent
    shared = {"melspectrogram", "embedding_model", "silero_vad"}
    return {_label_from_file(p): p for p in sorted(folder.glob("*.onnx")) if p.stem not in shared}


def resolve_source(name_or_path: str) -> Path:
    """A classifier file, or the name of one in the openwakeword wheel; ModelError naming both otherwise."""
    path = Path(name_or_path)
    if path.exists():
        return path
    builtin = builtin_models()
    if name_or_path in builtin:
        return builtin[name_or_path]
    raise ModelError(
        f"{name_or_path}: no such file, and not one of the openwakeword {embedding.OPENWAKEWORD_VERSION} "
        f"wheel's models ({', '.join(builtin)})"
    )


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def _label_from_file(path: Path) -> str:
    """`hey_jarvis_v0.1.onnx` → `hey_jarvis`."""
    stem = re.sub(r"_v\d+(\.\d+)*$", "", path.stem)
    return re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_") or "wakeword"


def _inline_ifs(graph: onnx.GraphProto) -> None:
    """Each `If` → both branches' nodes and a `Where`: a per-row condition, batchable (the If wants a scalar)."""
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "If":
            nodes.append(node)
            continue
        branches = {a.name: a.g for a in node.attribute}
        results = []
        for name in ("then_branch", "else_branch"):
            branch = branches[name]
            if len(branch.output) != 1 or len(node.output) != 1:
                raise ModelError(f"{node.name or 'If'}: only an If with one output per branch can be inlined")
            renames: dict[str, str] = {}
            for inner in branch.node:
                copy = onnx.NodeProto()
                copy.CopyFrom(inner)
                copy.input[:] = [renames.get(i, i) for i in copy.input]
                for index, out in enumerate(copy.output):
                    renames[out] = f"{node.output[0]}/{name}/{out}"
                    copy.output[index] = renames[out]
                nodes.append(copy)
            results.append(renames.get(branch.output[0].name, branch.output[0].name))
        nodes.append(helper.make_node("Where", [node.input[0], *results], [node.output[0]]))
    del graph.node[:]
    graph.node.extend(nodes)


def load_classifier(path: Path, label: str | None = None) -> Classifier:
    """Read an openWakeWord classifier ([1 or n, W, 96] → [1 or n, classes]) and make it batchable."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: not an ONNX model: {exc}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ModelError(f"{path}: an openWakeWord classifier has one input and one output")
    in_dims, out_dims = _dims(inputs[0]), _dims(model.graph.output[0])
    if len(in_dims) != 3 or in_dims[2] != EMBEDDING_DIM or not isinstance(in_dims[1], int) or in_dims[1] < 1:
        raise ModelError(f"{path}: input {inputs[0].name} is {in_dims}, expected [batch, window, {EMBEDDING_DIM}]")
    if len(out_dims) != 2 or not isinstance(out_dims[1], int) or out_dims[1] < 1:
        raise ModelError(f"{path}: output {model.graph.output[0].name} is {out_dims}, expected [batch, classes]")
    classes = int(out_dims[1])
    if classes == 1:
        labels = [BACKGROUND_LABEL, label or _label_from_file(path)]
    elif label is not None:
        raise ModelError(f"{path}: a classifier with {classes} outputs names its own classes; --label is for one")
    else:  # openWakeWord names a multi-class output by its classes: '{"1": "1_minute_timer", ...}'
        try:
            named = {int(k): str(v) for k, v in json.loads(model.graph.output[0].name).items()}
        except (ValueError, AttributeError):
            named = {}
        labels = [BACKGROUND_LABEL, *(named.get(i, f"class_{i}") for i in range(1, classes))]
    _inline_ifs(model.graph)
    for value in (inputs[0], model.graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "n"
    del model.graph.value_info[:]
    if next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) != OPSET:
        model = onnx.version_converter.convert_version(model, OPSET)
    onnx.checker.check_model(model)
    return Classifier(model, int(in_dims[1]), labels, classes == 1)


def _classifier_scores(
    g: GraphBuilder, classifier: Classifier, prefix: str, joined: str, widest: int, step_index: str, shape: list[str]
) -> str:
    """One classifier at every step: its last `window` embeddings gathered from `joined` → [B, T, outputs]."""
    window = classifier.window
    prefixed = onnx.compose.add_prefix(classifier.model, prefix)
    offsets = g.const(np.arange(widest - window, widest, dtype=np.int64)[None])  # the newest `window` rows
    rows = g.op("Add", [g.op("Unsqueeze", [step_index, g.const([1])]), offsets])  # [T, window]
    windows = g.op("Gather", [joined, rows], axis=1)  # [B, T, window, 96]
    g.nodes.append(
        helper.make_node("Reshape", [windows, g.const([-1, window, EMBEDDING_DIM])], [prefixed.graph.input[0].name])
    )
    g.nodes.extend(prefixed.graph.node)
    g.initializers.extend(prefixed.graph.initializer)
    return g.op("Reshape", [prefixed.graph.output[0].name, g.op("Concat", [*shape, g.const([-1])], axis=0)])


def head_graph(classifiers: list[Classifier]) -> onnx.ModelProto:
    """x [B, T, 96] embeddings, window, warmup → y [B, T, classes] (see the module docstring): the classifiers
    share one window of embeddings (the widest's); their keyword columns follow one another, and the background
    column is the product of theirs (no classifier fires)."""
    widest = max(c.window for c in classifiers)
    g = GraphBuilder()
    shape = g.op("Shape", ["x"])
    batch = g.op("Slice", [shape, g.const([0]), g.const([1])])
    steps = g.op("Slice", [shape, g.const([1]), g.const([2])])
    # Every step's classifier input: the last `window` embeddings, the oldest from the window state.
    size = (widest - 1) * EMBEDDING_DIM
    previous, window_out = g.state("window", size)
    joined = g.op(
        "Concat",
        [g.op("Reshape", [previous, g.op("Concat", [batch, g.const([widest - 1, EMBEDDING_DIM])], axis=0)]), "x"],
        axis=1,
    )
    newest = g.op("Slice", [joined, g.const([-(widest - 1)]), g.const([2**62]), g.const([1])])
    g.output_state(newest, window_out, batch, size)
    zero, one = g.const(np.array(0, np.int64)), g.const(np.array(1, np.int64))
    step_index = g.op("Range", [zero, g.op("Squeeze", [steps, g.const([0])]), one])  # [T]
    # Warm-up: steps seen so far (capped), so each classifier's first `warmup_steps` steps score as background.
    seen, seen_out = g.state("warmup", 1)  # [B, 1]
    cap = float(max(c.warmup_steps for c in classifiers))
    counted = g.op("Add", [seen, g.op("Cast", [g.op("Add", [step_index, one])], to=1)])  # [B, T]
    total = g.op("Add", [seen, g.op("Cast", [steps], to=1)])
    g.output_state(g.op("Min", [total, g.const(cap)]), seen_out, batch, 1)
    backgrounds, keywords = [], []
    for index, classifier in enumerate(classifiers):
        scores = _classifier_scores(g, classifier, f"oww{index}/", joined, widest, step_index, [batch, steps])
        ready = g.op("GreaterOrEqual", [counted, g.const(float(classifier.warmup_steps))])
        valid = g.op("Unsqueeze", [g.op("Cast", [ready], to=1), g.const([2])])  # [B, T, 1]
        kept = g.op("Mul", [scores, valid])
        if classifier.sigmoid:  # p → background 1 - p
            backgrounds.append(g.op("Sub", [g.const(1.0), kept]))
            keywords.append(kept)
        else:  # softmax: class 0 is the background, certain during the warm-up
            background = g.op("Slice", [kept, g.const([0]), g.const([1]), g.const([2])])
            backgrounds.append(g.op("Add", [background, g.op("Sub", [g.const(1.0), valid])]))
            keywords.append(g.op("Slice", [kept, g.const([1]), g.const([2**62]), g.const([2])]))
    none_fires = backgrounds[0]
    for background in backgrounds[1:]:
        none_fires = g.op("Mul", [none_fires, background])
    g.nodes.append(helper.make_node("Concat", [none_fires, *keywords], ["y"], axis=2))
    classes = 1 + sum(len(c.labels) - 1 for c in classifiers)
    extra = {o.domain: o for c in classifiers for o in c.model.opset_import if o.domain not in ("", "ai.onnx")}
    return g.model("openwakeword_head", ("x", EMBEDDING_DIM), ("y", classes), list(extra.values()))


def _detection(threshold: float | None) -> dict[str, object]:
    """The model's detection defaults: openWakeWord's, with `threshold` when given."""
    return {**DEFAULT_DETECTION, **({} if threshold is None else {"threshold": threshold})}


def check_rows_independent(classifier: Classifier, source: Path, rows: int = 7, seed: int = 0) -> float:
    """Largest difference between the batched classifier and the original file run one row at a time; raises
    ModelError when a row's score depends on its batch neighbours (then it cannot serve batched streams)."""
    rng = np.random.default_rng(seed)
    windows = rng.normal(0.0, 1.0, (rows, classifier.window, EMBEDDING_DIM)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    original = ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    batched = ort.InferenceSession(classifier.model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = original.get_inputs()[0].name
    one_by_one = np.concatenate([original.run(None, {name: windows[i : i + 1]})[0] for i in range(rows)])
    together = batched.run(None, {batched.get_inputs()[0].name: windows})[0]
    error = float(np.abs(one_by_one - together).max())
    if not error <= 1e-5:
        raise ModelError(f"{source}: batched rows differ from one-row runs by {error:.3g}: cannot batch it")
    return error


def convert(
    sources: list[Path], out_path: Path, labels: list[str] | None = None, threshold: float | None = None
) -> list[Classifier]:
    """openWakeWord classifier files → one streamer contract model at `out_path` (waveform in; the background,
    then every classifier's classes). `labels`: one per source, for sigmoid classifiers (default: the file name)."""
    if not sources:
        raise ModelError("no openWakeWord classifier given")
    if labels is not None and len(labels) != len(sources):
        raise ModelError(f"{len(labels)} label(s) for {len(sources)} classifier(s): give one per classifier or none")
    classifiers = [load_classifier(s, None if labels is None else labels[i]) for i, s in enumerate(sources)]
    for source, classifier in zip(sources, classifiers, strict=True):
        check_rows_independent(classifier, source)
    names = [BACKGROUND_LABEL, *(label for c in classifiers for label in c.labels[1:])]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ModelError(f"labels {repeated} occur twice: give each classifier its own (--label)")
    provenance = [
        {
            "source": source.name,
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "labels": classifier.labels[1:],
            "window_steps": classifier.window,
            "warmup_steps": classifier.warmup_steps,
        }
        for source, classifier in zip(sources, classifiers, strict=True)
    ]
    head = head_graph(classifiers)
    head.metadata_props.add(key="streamer.labels", value=json.dumps(names))
    head.metadata_props.add(key="streamer.scores", value="probabilities")
    embedding.combine_models(
        [head],
        out_path,
        {
            "streamer.version": "1",
            "streamer.state_batch_axis": "1",
            "streamer.detection": json.dumps(_detection(threshold)),
            "streamer.keyword.openwakeword": json.dumps({"classifiers": provenance, "licence": LICENCE_NOTE}),
            "streamer.keyword.embedding": json.dumps(embedding.PROVENANCE),
        },
    )
    return classifiers


def write_card(sources: list[Path], classifiers: list[Classifier], path: Path, threshold: float | None) -> None:
    """A short model card: where the classifiers came from, their licence, what the conversion changes."""
    detection = json.dumps(_detection(threshold))
    rows = "\n".join(
        f"| `{source.name}` | {', '.join(c.labels[1:])} | {c.window} ({c.window * 80} ms) | "
        f"{'sigmoid' if c.sigmoid else 'softmax'} | {c.warmup_steps} ({c.warmup_steps * 0.08:.2f} s) |"
        for source, c in zip(sources, classifiers, strict=True)
    )
    words = ", ".join(label for c in classifiers for label in c.labels[1:])
    path.write_text(
        f"""# {words}: openWakeWord model(s) served statefully

Converted by `streamer import-openwakeword` (sha256 of each source in the model's metadata
`streamer.keyword.openwakeword`). One ONNX file: 16 kHz audio in 80 ms steps (the `waveform` frontend) → the
streaming speech embedding (Google `speech_embedding`, Apache-2.0, from the openwakeword
{embedding.OPENWAKEWORD_VERSION} wheel), computed once per step → each classifier over its last embeddings, the
window kept as per-stream model state.

| source | labels | window (embeddings) | output | warm-up steps |
|---|---|---|---|---|
{rows}

- Each keyword column is its classifier's probability; `_background` is the probability that none fires.
- During a classifier's warm-up (the first steps of a stream) its keywords score 0; from then on every score
  equals openWakeWord's classifier on openWakeWord's own window.
- Detection defaults (metadata `streamer.detection`): {detection}; override in the daemon's `[detection]`.

**Licence.** {LICENCE_NOTE}

Serve: `streamer serve --model {path.parent / "model.onnx"}`. Measure: `streamer eval-keyword
{path.parent / "model.onnx"} --positives DIR --negatives DIR` (docs/keywords.md).
"""
    )
