"""Streaming self-test of any contract model, without torch: chunked equals whole, batch neighbours don't matter.

Runs random input through onnxruntime directly and through the Engine: a model whose state is not really carried,
or whose batch rows leak into each other, fails here before it is ever served.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.engine import Engine
from streamer.errors import ModelError
from streamer.frontend import build_frontend
from streamer.model.contract import ModelSpec, open_session

TOLERANCE = 1e-5
STEPS = 24


@dataclass
class Check:
    name: str
    max_abs_error: float
    ok: bool


@dataclass
class SelfTest:
    spec: ModelSpec
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "ok": self.ok,
            "model": str(spec.path),
            "data_input": spec.data_input,
            "output": spec.output,
            "features": spec.feature_dim,
            "classes": spec.num_classes,
            "labels": spec.labels,
            "scores": spec.scores,
            "states": [
                {"input": s.input, "output": s.output, "shape": list(s.shape), "batch_axis": s.batch_axis}
                for s in spec.states
            ],
            "frontend": spec.frontend,
            "checks": [asdict(c) for c in self.checks],
        }


def check_frontend(spec: ModelSpec) -> None:
    """Build the frontend the metadata asks for, so bad frontend metadata is refused now, not at serve time."""
    try:
        build_frontend(spec.frontend, spec.feature_dim)
    except ModelError as exc:
        raise ModelError(f"model {spec.path}: {exc}") from exc


def run_selftest(path: str | Path, seed: int = 0) -> SelfTest:
    """Contract checks (ModelError if broken), then the streaming checks, each recorded with its worst error."""
    spec = ModelSpec.load(path)
    check_frontend(spec)
    result = SelfTest(spec)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, STEPS, spec.feature_dim)).astype(np.float32)
    session = open_session(spec.path)

    def whole(batch: np.ndarray) -> np.ndarray:
        feeds = {spec.data_input: batch, **{s.input: s.zeros(batch.shape[0]) for s in spec.states}}
        return session.run([spec.output], feeds)[0]

    reference = whole(x)
    for chunk in (1, 5, 7):
        engine = Engine(spec.path)
        parts = []
        for start in range(0, STEPS, chunk):
            got = engine.step({f"s{i}": x[i, start : start + chunk] for i in range(3)})
            parts.append(np.stack([got[f"s{i}"] for i in range(3)]))
        result.checks.append(
            _check(f"chunks of {chunk} steps equal the whole sequence", np.concatenate(parts, 1), reference)
        )
    alone = np.concatenate([whole(x[i : i + 1]) for i in range(3)])
    result.checks.append(_check("a stream's scores do not depend on its batch neighbours", alone, reference))
    return result


def _check(name: str, got: np.ndarray, expected: np.ndarray) -> Check:
    error = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return Check(name, error, bool(error <= TOLERANCE))
