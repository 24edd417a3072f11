"""`streamer check` and `streamer export`: validate any contract model, or make one from a PyTorch module."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from streamer.errors import ConfigError, ModelError


def check(
    model: Annotated[Path, typer.Argument(help="ONNX model file")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Validate the model contract and self-test streaming equivalence on random input (no torch needed)."""
    from streamer.model.selftest import run_selftest

    result = run_selftest(model)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        spec = result.spec
        print(f"{spec.path}: {spec.feature_dim} features → {spec.num_classes} classes ({spec.scores})")
        print(f"  labels:   {', '.join(spec.labels)}")
        print("  states:   " + ", ".join(f"{s.input}→{s.output} {list(s.shape)}" for s in spec.states))
        print(f"  frontend: {json.dumps(spec.frontend) if spec.frontend else 'none (payload frames are features)'}")
        for c in result.checks:
            print(f"  [{'ok' if c.ok else 'FAIL'}] {c.name} (max error {c.max_abs_error:.2g})")
    if not result.ok:
        raise ModelError(f"model {model}: streaming self-test failed")


def export(
    module: Annotated[
        str, typer.Argument(help="factory of the PyTorch module: 'file.py:name' or 'package.module:name'")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write")],
    features: Annotated[int, typer.Option(help="feature width of x \\[batch, time, features]")],
    weights: Annotated[Path | None, typer.Option(help="state_dict file (torch.save) to load into the module")] = None,
    labels: Annotated[str | None, typer.Option(help="comma-separated class names")] = None,
    scores: Annotated[str, typer.Option(help="'logits' or 'probabilities'")] = "logits",
    frontend: Annotated[str | None, typer.Option(help="frontend metadata: JSON text or @file.json")] = None,
    state_shape: Annotated[
        list[str] | None, typer.Option(help="per-stream state shape without batch, e.g. 2,64 (repeat per state)")
    ] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="extra metadata KEY=VALUE (repeatable)")] = None,
) -> None:
    """Export a PyTorch GRU/LSTM module (forward(x, *states) -> (y, *states)) to a verified contract ONNX file."""
    import torch

    from streamer.model.export import export_module

    factory = _load_factory(module)
    net = factory()
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    extra = dict(_key_value(item) for item in metadata or [])
    report = export_module(
        net,
        out,
        features=features,
        state_shapes=[_shape(s) for s in state_shape] if state_shape else None,
        labels=labels.split(",") if labels else None,
        scores=scores,
        frontend=_json_arg(frontend) if frontend else None,
        extra_metadata=extra,
    )
    print(f"wrote {out}: verified against PyTorch, max abs error {report.max_abs_error:.2g}")


def _load_factory(spec: str) -> Any:
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ConfigError(f"module {spec!r}: expected 'file.py:name' or 'package.module:name'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"module {spec!r}: no such file {path}")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"module {spec!r}: cannot import {path}")
        loaded = importlib.util.module_from_spec(loader_spec)
        sys.modules[path.stem] = loaded
        loader_spec.loader.exec_module(loaded)
    else:
        loaded = importlib.import_module(target)
    if not hasattr(loaded, name):
        raise ConfigError(f"module {spec!r}: {target} has no attribute {name!r}")
    return getattr(loaded, name)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(","))
    except ValueError:
        raise ConfigError(f"--state-shape {text!r}: expected integers separated by commas, e.g. 2,64") from None


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--metadata {text!r}: expected KEY=VALUE")
    return key, value


def _json_arg(text: str) -> Any:
    source = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--frontend: not valid JSON ({exc})") from exc


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(export)
