"""Shared fixtures: real ONNX models made by the real exporter, once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ModelFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def export_model(tmp_path_factory: pytest.TempPathFactory) -> ModelFactory:
    """export_model(cell="gru", layers=2, features=8, hidden=16, classes=3, seed=0, **export_kwargs) -> path.

    Models are exported with `streamer.model.export.export_module` (so each is verified against torch) and cached
    for the session by their arguments."""
    cache: dict[tuple[object, ...], Path] = {}
    folder = tmp_path_factory.mktemp("models")

    def make(
        cell: str = "gru",
        layers: int = 2,
        features: int = 8,
        hidden: int = 16,
        classes: int = 3,
        seed: int = 0,
        **export_kwargs: object,
    ) -> Path:
        key = (cell, layers, features, hidden, classes, seed, repr(sorted(export_kwargs.items())))
        if key not in cache:
            import torch

            from streamer.model.export import export_module
            from streamer.model.reference import RecurrentClassifier

            torch.manual_seed(seed)
            module = RecurrentClassifier(cell, features, hidden, layers, classes)
            path = folder / f"{cell}{layers}_f{features}_h{hidden}_c{classes}_s{seed}_{len(cache)}.onnx"
            export_module(module, path, features=features, **export_kwargs)  # type: ignore[arg-type]
            cache[key] = path
        return cache[key]

    return make
