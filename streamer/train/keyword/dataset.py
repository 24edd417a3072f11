"""Training and validation streams as features: assembled audio → log-mel (the serving frontend's own code)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from streamer.frontend.logmel import logmel_offline
from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword.assemble import Occurrence, Pools, StreamRecipe, assemble, frame_targets


@dataclass
class FeatureStream:
    """One assembled stream: log-mel features [T, n_mels] (float16 to halve memory), targets [T], keywords."""

    features: np.ndarray
    targets: np.ndarray
    occurrences: list[Occurrence]


_POOLS: Pools | None = None  # set in the parent before forking workers: they inherit it, nothing is pickled


def _make(job: tuple[int, float, dict, StreamRecipe]) -> FeatureStream:
    seed, duration_s, params_dict, recipe = job
    assert _POOLS is not None
    params = LogMelParams.from_dict(params_dict)
    audio, occurrences = assemble(duration_s, _POOLS, np.random.default_rng(seed), recipe)
    features = logmel_offline(audio, params)
    targets = frame_targets(len(features), occurrences, params)
    return FeatureStream(features.astype(np.float16), targets.astype(np.int8), occurrences)


def build_streams(
    pools: Pools,
    *,
    count: int,
    duration_s: float,
    params: LogMelParams,
    seed: int,
    recipe: StreamRecipe | None = None,
    workers: int = 2,
    desc: str = "streams",
) -> list[FeatureStream]:
    """`count` streams of `duration_s` each, built in `workers` forked processes, with a progress bar."""
    global _POOLS
    _POOLS = pools
    jobs = [(seed * 1_000_003 + i, duration_s, params.to_dict(), recipe or StreamRecipe()) for i in range(count)]
    try:
        if workers <= 1:
            return [_make(job) for job in tqdm(jobs, desc=desc, unit="stream")]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(tqdm(pool.map(_make, jobs, chunksize=2), total=count, desc=desc, unit="stream"))
    finally:
        _POOLS = None
