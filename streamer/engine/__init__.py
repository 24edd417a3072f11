"""The stateful engine: per-stream state slabs and batched onnxruntime stepping."""

from streamer.engine.engine import Engine, StepReport
from streamer.engine.state import StateStore

__all__ = ["Engine", "StateStore", "StepReport"]
