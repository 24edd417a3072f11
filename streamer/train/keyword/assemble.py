"""Long continuous training audio: keywords spliced at random into speech, silence, noise and music, with targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamer.frontend.melspec import LogMelParams
from streamer.frontend.waveform import WaveformParams
from streamer.train.keyword.augment import augment_clip, rms, scale_to_snr
from streamer.train.keyword.sources import Recording

StepTiming = LogMelParams | WaveformParams  # what sets a model step's samples: its frontend's parameters

SAMPLE_RATE_HZ = 16000
IGNORE = -100  # target of frames the loss skips (the end of a keyword, where either answer is fair)
TARGET_BEFORE_END_MS = 30  # a keyword's class is the target from this long before its end ...
TARGET_AFTER_END_MS = 200  # ... to this long after it (3 and 20 steps at a 10 ms hop)


def steps_of(duration_ms: float, hop_ms: float) -> int:
    """A duration in whole model steps, halves rounded up, at least one: the same span whatever the hop."""
    return max(1, math.floor(duration_ms / hop_ms + 0.5))


@dataclass(frozen=True)
class StreamRecipe:
    """What a training stream contains; rates are per minute, levels in dB."""

    positives_per_min: float = 8.0
    tts_negatives_per_min: float = 10.0
    speech_per_min: float = 4.0
    mean_gap_s: float = 0.7
    adjacent_probability: float = 0.35  # the next utterance follows at once (0–150 ms), as speech does
    snr_db: tuple[float, float] = (0.0, 20.0)
    noise_probability: float = 0.8
    music_probability: float = 0.35
    level_dbfs: tuple[float, float] = (-42.0, -16.0)
    floor_dbfs: tuple[float, float] = (-80.0, -55.0)
    eq_probability: float = 0.0  # random EQ per utterance (augment.random_eq); 0 draws no random number for it


@dataclass(frozen=True)
class Occurrence:
    """One keyword in a stream: `label` index, sample span [start, end)."""

    label: int
    start: int
    end: int


@dataclass
class Pools:
    """What streams are built from: keyword clips per label, negative clips, recordings."""

    positives: list[list[np.ndarray]]
    negatives: list[np.ndarray]
    speech: list[Recording] = field(default_factory=list)
    noise: list[Recording] = field(default_factory=list)
    music: list[Recording] = field(default_factory=list)


def _bed(recordings: Sequence[Recording], length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` samples of back-to-back random excerpts of `recordings` (looped where short)."""
    out = np.zeros(length, np.float32)
    cursor = 0
    while cursor < length:
        source = recordings[int(rng.integers(len(recordings)))].samples
        start = int(rng.integers(len(source)))
        piece = np.concatenate([source[start:], source[:start]])[: length - cursor]
        out[cursor : cursor + len(piece)] = piece / (rms(piece) + 1e-6)
        cursor += len(piece)
    return out


def assemble(
    duration_s: float, pools: Pools, rng: np.random.Generator, recipe: StreamRecipe = StreamRecipe()
) -> tuple[np.ndarray, list[Occurrence]]:
    """One stream of `duration_s`: foreground utterances at random gaps over a noise/music bed."""
    length = int(duration_s * SAMPLE_RATE_HZ)
    foreground = np.zeros(length, np.float32)
    occurrences: list[Occurrence] = []
    rates = np.array(
        [recipe.positives_per_min, recipe.tts_negatives_per_min, recipe.speech_per_min if pools.speech else 0.0]
    )
    kinds = rates / rates.sum()
    speech_rms = 0.1
    cursor = int(rng.exponential(recipe.mean_gap_s) * SAMPLE_RATE_HZ)
    while cursor < length:
        kind = int(rng.choice(3, p=kinds))
        label = -1
        if kind == 0:
            label = int(rng.integers(len(pools.positives)))
            clip = pools.positives[label][rng.integers(len(pools.positives[label]))]
        elif kind == 1:
            clip = pools.negatives[rng.integers(len(pools.negatives))]
        else:
            source = pools.speech[rng.integers(len(pools.speech))].samples
            clip = source
        clip = augment_clip(clip, rng, recipe.eq_probability)
        clip = clip * (speech_rms * 10 ** (rng.uniform(-8, 6) / 20) / (rms(clip) + 1e-9))
        stop = min(length, cursor + len(clip))
        foreground[cursor:stop] += clip[: stop - cursor]
        if label >= 0 and stop == cursor + len(clip):
            occurrences.append(Occurrence(label, cursor, stop))
        # Often back to back ("... and hey streamer lights on"), mostly short pauses, sometimes long quiet.
        draw = rng.random()
        if draw < recipe.adjacent_probability:
            gap_s = rng.uniform(0.0, 0.15)
        elif draw < 0.88:
            gap_s = max(0.03, rng.exponential(recipe.mean_gap_s))
        else:
            gap_s = rng.uniform(2.0, 8.0)
        cursor = stop + int(gap_s * SAMPLE_RATE_HZ)

    mix = foreground
    if pools.noise and rng.random() < recipe.noise_probability:
        mix = mix + scale_to_snr(_bed(pools.noise, length, rng), speech_rms, rng.uniform(*recipe.snr_db))
    if pools.music and rng.random() < recipe.music_probability:
        mix = mix + scale_to_snr(_bed(pools.music, length, rng), speech_rms, rng.uniform(*recipe.snr_db))
    level = 10 ** (rng.uniform(*recipe.level_dbfs) / 20)
    mix = mix * (level / speech_rms)
    mix = mix + rng.standard_normal(length).astype(np.float32) * 10 ** (rng.uniform(*recipe.floor_dbfs) / 20)
    return np.clip(mix, -1.0, 1.0).astype(np.float32), occurrences


def frame_targets(frames: int, occurrences: Sequence[Occurrence], params: StepTiming) -> np.ndarray:
    """Per-frame class targets: 0 background, k+1 for keyword k from TARGET_BEFORE_END_MS before its end to
    TARGET_AFTER_END_MS after it (in whole steps of the model's hop), IGNORE near it.

    Frame t sees samples [t*hop, t*hop+win); a keyword ends in the first frame that has seen its last sample.
    The second half of each keyword is IGNORE: whether "hey stream-" is already the keyword is not ours to say.
    """
    hop, win = params.hop_samples, params.win_samples
    before_end_steps = steps_of(TARGET_BEFORE_END_MS, params.hop_ms)
    after_end_steps = steps_of(TARGET_AFTER_END_MS, params.hop_ms)
    targets = np.zeros(frames, np.int64)
    for occ in occurrences:
        end_step = max(0, -(-(occ.end - win) // hop))
        start_step = max(0, (occ.start + occ.end) // 2 - win) // hop
        targets[start_step : max(start_step, end_step - before_end_steps)] = IGNORE
        targets[max(0, end_step - before_end_steps) : end_step + after_end_steps] = occ.label + 1
    return targets
