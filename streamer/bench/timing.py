"""Timing helpers shared by the benchmarks: medians over interleaved repeats (these machines are noisy)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

Clock = Callable[[], float]


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 2, clock: Clock = time.perf_counter) -> float:
    """Median time of `run()` over `repeats` calls after `warmup` untimed calls, on `clock`."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def interleaved_medians(
    runs: dict[str, Callable[[], object]], rounds: int, per_round: int = 3, clock: Clock = time.perf_counter
) -> dict[str, float]:
    """Median seconds per call of each run, measured round-robin so that drift in machine load hits all alike.
    For single-threaded work on a shared machine, `time.thread_time` (CPU time of this thread) is the steadier clock."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm caches and lazy allocations
    for _ in range(rounds):
        for name, run in runs.items():
            samples[name].append(median_seconds(run, per_round, warmup=0, clock=clock))
    return {name: statistics.median(values) for name, values in samples.items()}
