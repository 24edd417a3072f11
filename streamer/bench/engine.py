"""`streamer bench engine`: frames/s through Engine.step against its baselines, all in one process.

Baselines, on the same data and model (a 2-layer GRU, 40 features in, 64 hidden):
  bare       one batched `session.run` with the states already stacked: the runtime's own limit
  per-stream one `session.run` per stream per chunk, each with its own state (as Silero's wrapper does)
  torch      PyTorch eager stepping each stream with its own state, as a user would write it
  gemm       only the GRU's matrix products, timed with numpy on one thread: the GEMM-bound limit

Times are CPU time of the calling thread (every contender is single-threaded), medians of interleaved rounds.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.bench.timing import interleaved_medians
from streamer.engine import Engine
from streamer.model.contract import open_session

FEATURES, HIDDEN, LAYERS, CLASSES = 40, 64, 2, 4


@dataclass
class EngineBenchRow:
    streams: int
    frames_per_chunk: int
    engine_fps: float
    bare_fps: float
    per_stream_fps: float
    torch_fps: float
    gemm_fps: float

    @property
    def overhead(self) -> float:
        """What the engine's bookkeeping adds to the bare batched call (0.25 = 25 %)."""
        return self.bare_fps / self.engine_fps - 1.0

    def ratios(self) -> dict[str, float]:
        return {
            "engine_overhead_vs_bare": self.overhead,
            "engine_vs_per_stream": self.engine_fps / self.per_stream_fps,
            "engine_vs_torch": self.engine_fps / self.torch_fps,
            "bare_fraction_of_gemm": self.bare_fps / self.gemm_fps,
            "engine_fraction_of_gemm": self.engine_fps / self.gemm_fps,
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), **self.ratios()}


def export_bench_model(folder: Path) -> tuple[Path, Any]:
    import torch

    from streamer.model.export import export_module
    from streamer.model.reference import RecurrentClassifier

    torch.manual_seed(0)
    module = RecurrentClassifier("gru", FEATURES, HIDDEN, LAYERS, CLASSES).eval()
    path = folder / "bench_gru.onnx"
    export_module(module, path, features=FEATURES)
    return path, module


def run_engine_bench(
    streams: list[int], frames: list[int], rounds: int = 5, torch_streams: int = 200
) -> list[EngineBenchRow]:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        path, module = export_bench_model(Path(tmp))
        for n in streams:
            for t in frames:
                rows.append(_measure(path, module, n, t, rounds, min(n, torch_streams)))
    return rows


def _measure(path: Path, module: Any, n: int, t: int, rounds: int, torch_n: int) -> EngineBenchRow:
    import torch

    rng = np.random.default_rng(0)
    chunks = {f"stream-{i}": rng.standard_normal((t, FEATURES)).astype(np.float32) for i in range(n)}
    engine = Engine(path, initial_slots=n)
    engine.step(chunks)

    session = open_session(path)
    x = np.stack(list(chunks.values()))
    h = np.zeros((LAYERS, n, HIDDEN), np.float32)
    own_states = [np.zeros((LAYERS, 1, HIDDEN), np.float32) for _ in range(n)]
    singles = [c[None] for c in chunks.values()]

    def per_stream() -> None:
        for i in range(n):
            _, own_states[i] = session.run(None, {"x": singles[i], "h0": own_states[i]})

    torch_states = [torch.zeros(LAYERS, 1, HIDDEN) for _ in range(torch_n)]
    torch_x = [torch.from_numpy(s) for s in singles[:torch_n]]

    def torch_eager() -> None:
        with torch.no_grad():
            for i in range(torch_n):
                _, torch_states[i] = module(torch_x[i], torch_states[i])

    gemm = _gemm_runner(n, t, rng)
    seconds = interleaved_medians(
        {
            "engine": lambda: engine.step(chunks),
            "bare": lambda: session.run(None, {"x": x, "h0": h}),
            "per_stream": per_stream,
            "torch": torch_eager,
            "gemm": gemm,
        },
        rounds=rounds,
        clock=time.thread_time,  # every contender runs on this one thread; other processes' load stays out
    )
    frames = n * t
    return EngineBenchRow(
        streams=n,
        frames_per_chunk=t,
        engine_fps=frames / seconds["engine"],
        bare_fps=frames / seconds["bare"],
        per_stream_fps=frames / seconds["per_stream"],
        torch_fps=torch_n * t / seconds["torch"],
        gemm_fps=frames / seconds["gemm"],
    )


def _gemm_runner(n: int, t: int, rng: np.random.Generator) -> Any:
    """Only the matrix products of a 2-layer GRU step over n streams × t frames (no gates, no memory traffic
    beyond the operands): input projections as one GEMM per layer, recurrent projections one per step."""
    w_in = [rng.standard_normal((FEATURES if i == 0 else HIDDEN, 3 * HIDDEN)).astype(np.float32) for i in range(LAYERS)]
    w_rec = [rng.standard_normal((HIDDEN, 3 * HIDDEN)).astype(np.float32) for _ in range(LAYERS)]
    w_out = rng.standard_normal((HIDDEN, CLASSES)).astype(np.float32)
    x = rng.standard_normal((n * t, FEATURES)).astype(np.float32)
    hidden = rng.standard_normal((n * t, HIDDEN)).astype(np.float32)
    state = rng.standard_normal((n, HIDDEN)).astype(np.float32)

    def run() -> None:
        for layer in range(LAYERS):
            (x if layer == 0 else hidden) @ w_in[layer]
            for _ in range(t):
                state @ w_rec[layer]
        hidden @ w_out

    return run
