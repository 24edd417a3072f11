"""PyTorch GRU/LSTM module → one ONNX file that obeys the stateful model contract, verified before success.

The module's forward is `forward(x, *states) -> (y, *states)` with x `[batch, time, features]` and each state
`[..., batch, ...]` (batch at axis 1, as PyTorch's `[layers, batch, hidden]`). We use the legacy TorchScript
exporter (`dynamo=False`): in torch 2.13 the dynamo exporter fixes the time axis at the example's length, while the
legacy one emits native GRU/LSTM nodes with dynamic batch and time axes (and runs 10–20 µs faster per call).

Verification (always, before the file is reported as written): onnxruntime against PyTorch at batch 1 and 7, whole
sequences and chunk lengths 1 and 13 with state carried, all within `tolerance`.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from streamer.errors import ExportError, ModelError
from streamer.model.contract import ModelSpec, open_session
from streamer.model.selftest import check_frontend

CONTRACT_VERSION = "1"
VERIFY_BATCHES = (1, 7)
VERIFY_CHUNKS = (1, 13)
VERIFY_STEPS = 26


@dataclass(frozen=True)
class ExportReport:
    """What was written and how closely it matched PyTorch."""

    spec: ModelSpec
    max_abs_error: float


def infer_state_shapes(module: nn.Module) -> list[tuple[int, ...]]:
    """Per-stream state shapes (batch axis left out) from the module's single nn.GRU/nn.LSTM/nn.RNN."""
    rnns = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    if len(rnns) != 1:
        raise ExportError(
            f"cannot infer state shapes: the module has {len(rnns)} recurrent layers (nn.GRU/nn.LSTM/nn.RNN), "
            "expected exactly one; pass state_shapes explicitly"
        )
    rnn = rnns[0]
    if rnn.bidirectional:
        raise ExportError(
            "a bidirectional RNN cannot run as a stream (it needs the future); export a unidirectional one"
        )
    if isinstance(rnn, nn.LSTM):
        hidden_out = rnn.proj_size or rnn.hidden_size
        return [(rnn.num_layers, hidden_out), (rnn.num_layers, rnn.hidden_size)]
    return [(rnn.num_layers, rnn.hidden_size)]


def state_names(count: int) -> list[tuple[str, str]]:
    """Input/output names of the state tensors: PyTorch's h0/c0 where they fit, numbered otherwise."""
    if count <= 2:
        return [("h0", "hn"), ("c0", "cn")][:count]
    return [(f"state{i}", f"state{i}_out") for i in range(count)]


def export_module(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    features: int,
    state_shapes: Sequence[Sequence[int]] | None = None,
    labels: Sequence[str] | None = None,
    scores: str = "logits",
    frontend: dict[str, Any] | None = None,
    extra_metadata: dict[str, Any] | None = None,
    opset: int = 17,
    tolerance: float = 1e-5,
) -> ExportReport:
    """Export `module`, write contract metadata, verify against PyTorch, then move the file into place."""
    path = Path(path)
    shapes = [tuple(int(d) for d in s) for s in (state_shapes or infer_state_shapes(module))]
    names = state_names(len(shapes))
    if scores not in ("logits", "probabilities"):
        raise ExportError(f"scores is {scores!r}, expected 'logits' or 'probabilities'")
    module = module.eval()

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        draft = Path(tmp) / path.name
        _trace(module, draft, features, shapes, names, opset)
        _write_metadata(draft, names, labels, scores, frontend, extra_metadata)
        try:
            spec = ModelSpec.load(draft)
            check_frontend(spec)
        except ModelError as exc:
            raise ExportError(f"the exported file breaks the model contract: {exc}") from exc
        error = verify_against_torch(module, draft, spec, tolerance)
        os.replace(draft, path)
    return ExportReport(spec=ModelSpec.load(path), max_abs_error=error)


def _trace(
    module: nn.Module,
    path: Path,
    features: int,
    shapes: list[tuple[int, ...]],
    names: list[tuple[str, str]],
    opset: int,
) -> None:
    batch, steps = 2, 3
    example = (torch.zeros(batch, steps, features), *(torch.zeros(s[0], batch, *s[1:]) for s in shapes))
    dynamic_axes: dict[str, dict[int, str]] = {"x": {0: "batch", 1: "time"}, "y": {0: "batch", 1: "time"}}
    for state_in, state_out in names:
        dynamic_axes[state_in] = {1: "batch"}
        dynamic_axes[state_out] = {1: "batch"}
    try:
        with warnings.catch_warnings():
            # The legacy exporter warns about batch_first GRUs and its own deprecation; both are expected here.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=["x", *(n[0] for n in names)],
                output_names=["y", *(n[1] for n in names)],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:  # torch raises many unrelated types while tracing
        raise ExportError(
            f"torch.onnx.export failed: {exc}. The module must be forward(x, *states) -> (y, *states) with "
            f"x [batch, time, {features}] and states shaped {[(s[0], 'batch', *s[1:]) for s in shapes]}"
        ) from exc


def _write_metadata(
    path: Path,
    names: list[tuple[str, str]],
    labels: Sequence[str] | None,
    scores: str,
    frontend: dict[str, Any] | None,
    extra: dict[str, Any] | None,
) -> None:
    model = onnx.load(str(path))
    meta: dict[str, str] = {
        "streamer.version": CONTRACT_VERSION,
        "streamer.state": json.dumps(dict(names)),
        "streamer.state_batch_axis": "1",
        "streamer.scores": scores,
    }
    if labels is not None:
        meta["streamer.labels"] = json.dumps(list(labels))
    if frontend is not None:
        meta["streamer.frontend"] = json.dumps(frontend)
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify_against_torch(module: nn.Module, path: Path, spec: ModelSpec, tolerance: float) -> float:
    """Largest |ORT − torch| over batches 1 and 7, whole and chunked runs; raises ExportError above tolerance."""
    session = open_session(path)
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch in VERIFY_BATCHES:
        x = torch.randn(batch, VERIFY_STEPS, spec.feature_dim, generator=generator)
        states = [torch.from_numpy(s.zeros(batch)) for s in spec.states]
        with torch.no_grad():
            expected = module(x, *states)[0].numpy()
        for chunk in (VERIFY_STEPS, *VERIFY_CHUNKS):
            got = _run_chunked(session, spec, x.numpy(), chunk)
            error = float(np.max(np.abs(got - expected)))
            worst = max(worst, error)
            if not error <= tolerance:
                raise ExportError(
                    f"verification failed: onnxruntime differs from PyTorch by {error:.3g} (tolerance {tolerance:g}) "
                    f"at batch {batch} with chunks of {chunk} steps. Does forward() keep the time axis at 1 and "
                    "carry every state it is given?"
                )
    return worst


def _run_chunked(session: Any, spec: ModelSpec, x: np.ndarray, chunk: int) -> np.ndarray:
    states = [s.zeros(x.shape[0]) for s in spec.states]
    outputs = []
    for start in range(0, x.shape[1], chunk):
        feeds = {spec.data_input: np.ascontiguousarray(x[:, start : start + chunk])}
        feeds.update({s.input: v for s, v in zip(spec.states, states, strict=True)})
        y, *states = session.run(spec.output_names, feeds)
        outputs.append(y)
    return np.concatenate(outputs, axis=1)
