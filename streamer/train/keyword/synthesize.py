"""Renders keyword positives and negatives with every voice (several prosodies each) into a cached clip set."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streamer.train.keyword import corpus
from streamer.train.keyword.voices import Prosody, Voice, render_many, trim_silence

BACKGROUND = -1  # label of a negative clip


@dataclass(frozen=True)
class RenderPlan:
    """How many renderings per voice: per keyword (positives, near misses) and in all (sentences)."""

    positives: int
    near_misses: int
    sentences: int
    rate_range: tuple[float, float] = (0.8, 1.25)
    pitch_range: tuple[float, float] = (0.8, 1.25)


@dataclass
class ClipSet:
    """Rendered clips: `labels[i]` is a keyword index or BACKGROUND; `voices[i]` the voice key."""

    clips: list[np.ndarray]
    labels: list[int]
    texts: list[str]
    voices: list[str]

    def of_label(self, label: int) -> list[np.ndarray]:
        return [c for c, lab in zip(self.clips, self.labels, strict=True) if lab == label]

    def negatives(self, *, sentences: bool) -> list[np.ndarray]:
        """Negative clips that are ordinary sentences (True) or near misses of a keyword (False)."""
        return [
            c
            for c, lab, text in zip(self.clips, self.labels, self.texts, strict=True)
            if lab == BACKGROUND and corpus.is_sentence(text) == sentences
        ]

    def save(self, path: Path) -> None:
        offsets = np.cumsum([0, *(len(c) for c in self.clips)])
        samples = np.concatenate(self.clips) if self.clips else np.zeros(0, np.float32)
        meta = json.dumps({"labels": self.labels, "texts": self.texts, "voices": self.voices})
        np.savez(path, samples=samples, offsets=offsets, meta=np.array(meta))

    @classmethod
    def load(cls, path: Path) -> ClipSet:
        with np.load(path) as data:
            offsets = data["offsets"]
            samples = data["samples"]
            meta = json.loads(str(data["meta"]))
        clips = [samples[a:b] for a, b in itertools.pairwise(offsets)]
        return cls(clips, meta["labels"], meta["texts"], meta["voices"])


def _items_for(voice: Voice, keywords: Sequence[str], plan: RenderPlan, seed: int) -> list[tuple[str, int, Prosody]]:
    rng = random.Random(f"{seed}:{voice.key}")

    def prosody() -> Prosody:
        return Prosody(rate=rng.uniform(*plan.rate_range), pitch=rng.uniform(*plan.pitch_range))

    items: list[tuple[str, int, Prosody]] = []
    for index, keyword in enumerate(keywords):
        items += [(keyword, index, prosody()) for _ in range(plan.positives)]
        items += [(t, BACKGROUND, prosody()) for t in corpus.near_misses(keyword, keywords, rng, plan.near_misses)]
    items += [(t, BACKGROUND, prosody()) for t in corpus.general_sentences(keywords, rng, plan.sentences)]
    return items


def _render_voice(args: tuple[Voice, list[tuple[str, int, Prosody]]]) -> ClipSet:
    voice, items = args
    clips = render_many(voice, [(text, p) for text, _, p in items])
    kept = [(trim_silence(c), it) for c, it in zip(clips, items, strict=True)]
    kept = [(c, it) for c, it in kept if len(c) > 1600]  # < 0.1 s: the engine produced nothing usable
    return ClipSet([c for c, _ in kept], [it[1] for _, it in kept], [it[0] for _, it in kept], [voice.key] * len(kept))


def synthesize(
    keywords: Sequence[str],
    voices: Sequence[Voice],
    plan: RenderPlan,
    *,
    seed: int = 0,
    workers: int = 2,
    desc: str = "render",
) -> ClipSet:
    """Render every voice's items in `workers` processes; a progress bar counts voices."""
    jobs = [(voice, _items_for(voice, keywords, plan, seed)) for voice in voices]
    merged = ClipSet([], [], [], [])
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in tqdm(pool.map(_render_voice, jobs), total=len(jobs), desc=desc, unit="voice"):
            merged.clips += part.clips
            merged.labels += part.labels
            merged.texts += part.texts
            merged.voices += part.voices
    return merged
