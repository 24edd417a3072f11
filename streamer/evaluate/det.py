"""Detection error trade-off: events matched to known keyword times → false rejects vs false accepts per hour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamer.evaluate.events import Events, EventTrack


@dataclass(frozen=True)
class Truth:
    """Where the keywords are: per positive its keyword index (into EventTrack.labels) and span in steps."""

    keyword: np.ndarray  # int [positives]
    start_step: np.ndarray  # first step that saw the keyword's first sample
    end_step: np.ndarray  # first step that saw its last sample: the keyword's end


@dataclass(frozen=True)
class Outcome:
    """One threshold setting: counts, rates, and each hit's latency in steps after its keyword's end."""

    thresholds: tuple[float, ...]
    positives: int
    misses: int
    false_accepts: int
    fa_per_hour: float
    latencies_steps: np.ndarray

    @property
    def frr(self) -> float:
        return self.misses / self.positives if self.positives else float("nan")


def match(
    events: Events, truth: Truth, *, tolerance_after_steps: int, keywords: Sequence[int]
) -> tuple[int, int, int, np.ndarray]:
    """(positives, misses, false accepts, hit latencies) over `keywords`.

    The first event of the right keyword within [start, end + tolerance] of a positive is a hit; every other
    event of those keywords (outside every window of its keyword, a repeat inside one, a wrong keyword) is a
    false accept."""
    positives = misses = false_accepts = 0
    latencies: list[np.ndarray] = []
    for k in keywords:
        mine = truth.keyword == k
        order = np.argsort(truth.start_step[mine])
        starts = truth.start_step[mine][order]
        ends = truth.end_step[mine][order]
        steps = events.steps[events.keywords == k]
        positives += len(starts)
        if len(starts) == 0:
            false_accepts += len(steps)
            continue
        window = np.searchsorted(starts, steps, side="right") - 1
        inside = (window >= 0) & (steps <= ends[np.maximum(window, 0)] + tolerance_after_steps)
        hit_windows, first = np.unique(window[inside], return_index=True)
        misses += len(starts) - len(hit_windows)
        false_accepts += len(steps) - len(hit_windows)
        latencies.append(steps[inside][first] - ends[hit_windows])
    return positives, misses, false_accepts, (np.concatenate(latencies) if latencies else np.zeros(0, np.int64))


def score(
    track: EventTrack,
    truth: Truth,
    thresholds: Sequence[float],
    *,
    negative_hours: float,
    tolerance_after_steps: int,
    keywords: Sequence[int] | None = None,
) -> Outcome:
    """Events at `thresholds` (one per keyword of the track), matched to `truth`."""
    chosen = range(len(track.labels)) if keywords is None else keywords
    positives, misses, false_accepts, latencies = match(
        track.events(thresholds), truth, tolerance_after_steps=tolerance_after_steps, keywords=list(chosen)
    )
    return Outcome(
        thresholds=tuple(float(t) for t in thresholds),
        positives=positives,
        misses=misses,
        false_accepts=false_accepts,
        fa_per_hour=false_accepts / negative_hours if negative_hours > 0 else float("inf"),
        latencies_steps=latencies,
    )


def threshold_grid() -> np.ndarray:
    """Thresholds to sweep: linear in the middle, dense towards 1 where confident models put their scores."""
    near_one = 1.0 - np.logspace(-5, -1.3, 40)
    return np.unique(np.round(np.concatenate((np.linspace(0.05, 0.95, 37), near_one)), 9))


def sweep(
    track: EventTrack,
    truth: Truth,
    *,
    negative_hours: float,
    tolerance_after_steps: int,
    keywords: Sequence[int] | None = None,
    max_fa_per_hour: float = 30.0,
    grid: np.ndarray | None = None,
) -> list[Outcome]:
    """One shared threshold for every keyword, from high to low; stops once FA/h passes `max_fa_per_hour`."""
    outcomes = []
    for threshold in sorted(threshold_grid() if grid is None else grid, reverse=True):
        outcome = score(
            track,
            truth,
            [float(threshold)] * len(track.labels),
            negative_hours=negative_hours,
            tolerance_after_steps=tolerance_after_steps,
            keywords=keywords,
        )
        outcomes.append(outcome)
        if outcome.fa_per_hour > max_fa_per_hour:
            break
    return outcomes


def operating_point(curve: Sequence[Outcome], max_fa_per_hour: float) -> Outcome | None:
    """The fewest false rejects with at most `max_fa_per_hour` (ties: fewer false accepts, then the higher
    threshold); None when no swept threshold keeps false accepts that low."""
    allowed = [o for o in curve if o.fa_per_hour <= max_fa_per_hour]
    if not allowed:
        return None
    return min(allowed, key=lambda o: (o.misses, o.false_accepts, -o.thresholds[0]))


def allocate(curves: Sequence[Sequence[Outcome]], max_false_accepts: int) -> list[Outcome] | None:
    """One point from each keyword's own curve: the fewest misses in all with at most `max_false_accepts` false
    accepts in all (ties: fewer false accepts, then higher thresholds). None when some keyword has no point
    within the budget. Exact: a knapsack over the false-accept count, which is small at these rates."""
    best: dict[int, tuple[int, tuple[float, ...], list[Outcome]]] = {0: (0, (), [])}  # FAs → (misses, key, picks)
    for curve in curves:
        merged: dict[int, tuple[int, tuple[float, ...], list[Outcome]]] = {}
        for used, (misses, key, picks) in best.items():
            for outcome in curve:
                total = used + outcome.false_accepts
                if total > max_false_accepts:
                    continue
                candidate = (misses + outcome.misses, (*key, -outcome.thresholds[0]), [*picks, outcome])
                if total not in merged or candidate[:2] < merged[total][:2]:
                    merged[total] = candidate
        if not merged:
            return None
        best = merged
    return min(best.items(), key=lambda item: (item[1][0], item[0], item[1][1]))[1][2]


def span_to_steps(
    start_sample: np.ndarray, end_sample: np.ndarray, *, hop: int, win: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample span [start, end) → (first step that saw its first sample, first step that saw its last sample),
    for frames where step k covers samples [k·hop, k·hop + win)."""
    start = np.maximum(0, (np.asarray(start_sample) - win) // hop + 1)
    end = np.maximum(0, -(-(np.asarray(end_sample) - win) // hop))
    return start.astype(np.int64), end.astype(np.int64)


def hit_mask(events: Events, truth: Truth, *, tolerance_after_steps: int) -> np.ndarray:
    """Per positive (in `truth` order): whether an event of its keyword hit it (as `match` counts hits)."""
    hit = np.zeros(len(truth.keyword), bool)
    for k in np.unique(truth.keyword):
        mine = np.flatnonzero(truth.keyword == k)
        order = mine[np.argsort(truth.start_step[mine])]
        starts, ends = truth.start_step[order], truth.end_step[order] + tolerance_after_steps
        steps = events.steps[events.keywords == k]
        window = np.searchsorted(starts, steps, side="right") - 1
        inside = (window >= 0) & (steps <= ends[np.maximum(window, 0)])
        hit[order[np.unique(window[inside])]] = True
    return hit
