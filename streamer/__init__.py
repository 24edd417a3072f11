"""streamer: a stateful streaming inference daemon for LSTM/GRU ONNX models.

The public Python API is `Engine` (features in, per-step scores out, state kept per stream) and
`Pipeline` (raw samples in: the model's own frontend, then the engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamer.errors import StreamerError

__all__ = ["Engine", "Pipeline", "StreamerError"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from streamer.engine import Engine
    from streamer.pipeline import Pipeline


def __getattr__(name: str) -> Any:
    # Lazy so that `import streamer` stays cheap for the CLI and tools.
    if name == "Engine":
        from streamer.engine import Engine

        return Engine
    if name == "Pipeline":
        from streamer.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'streamer' has no attribute {name!r}")
