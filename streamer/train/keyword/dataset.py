"""Training and validation streams as features: assembled audio → log-mel (the serving frontend's own code), or
another featurizer (the speech-embedding graph the served model runs)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from streamer.frontend.logmel import logmel_offline
from streamer.frontend.melspec import LogMelParams
from streamer.train.keyword.assemble import Occurrence, Pools, StepTiming, StreamRecipe, assemble, frame_targets


@dataclass
class FeatureStream:
    """One assembled stream: log-mel features [T, n_mels] (float16 to halve memory), targets [T], keywords."""

    features: np.ndarray
    targets: np.ndarray
    occurrences: list[Occurrence]


_POOLS: Pools | None = None  # set in the parent before forking workers: they inherit it, nothing is pickled
Featurize = Callable[[np.ndarray], np.ndarray]  # float32 audio at 16 kHz → features [T, F]
_FEATURIZE: Featurize | None = None  # likewise; None: log-mel with the job's parameters


def _make(job: tuple[int, float, StepTiming, StreamRecipe]) -> FeatureStream:
    seed, duration_s, params, recipe = job
    assert _POOLS is not None
    audio, occurrences = assemble(duration_s, _POOLS, np.random.default_rng(seed), recipe)
    if _FEATURIZE is not None:
        features = _FEATURIZE(audio)
    else:
        assert isinstance(params, LogMelParams)
        features = logmel_offline(audio, params)
    targets = frame_targets(len(features), occurrences, params)
    return FeatureStream(features.astype(np.float16), targets.astype(np.int8), occurrences)


def build_streams(
    pools: Pools,
    *,
    count: int,
    duration_s: float,
    params: StepTiming,
    seed: int,
    recipe: StreamRecipe | None = None,
    workers: int = 2,
    desc: str = "streams",
    featurize: Featurize | None = None,
) -> list[FeatureStream]:
    """`count` streams of `duration_s` each, built in `workers` forked processes, with a progress bar.

    Features are log-mel with `params` unless `featurize` is given; `params` always sets the step timing."""
    global _POOLS, _FEATURIZE
    _POOLS, _FEATURIZE = pools, featurize
    jobs = [(seed * 1_000_003 + i, duration_s, params, recipe or StreamRecipe()) for i in range(count)]
    try:
        if workers <= 1:
            return [_make(job) for job in tqdm(jobs, desc=desc, unit="stream")]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(tqdm(pool.map(_make, jobs, chunksize=2), total=count, desc=desc, unit="stream"))
    finally:
        _POOLS, _FEATURIZE = None, None
