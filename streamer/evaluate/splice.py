"""The evaluation stream: positives spliced into negative audio at random gaps, optional noise at a fixed SNR."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from streamer.errors import ConfigError
from streamer.evaluate.audio import active_span, rms

FADE_SAMPLES = 80  # 5 ms at 16 kHz: cuts into the negative audio are faded so the splice itself is no click


@dataclass(frozen=True)
class Positive:
    keyword: int  # index into the model's keyword labels
    name: str
    samples: np.ndarray


@dataclass(frozen=True)
class SpliceResult:
    """Where each positive's speech ended up in the stream (samples), and how much negative audio there is."""

    keyword: np.ndarray
    start_sample: np.ndarray
    end_sample: np.ndarray
    negative_samples: int
    total_samples: int


@dataclass(frozen=True)
class SplicePlan:
    """`min_gap_s`: least negative audio between two positives (and before the first); `level_dbfs`: RMS of
    each positive's speech, None to keep file levels; `snr_db`: noise bed relative to that level (None: none)."""

    min_gap_s: float = 4.0
    level_dbfs: float | None = -26.0
    snr_db: float | None = None
    seed: int = 0


class Splicer:
    """Builds the stream lazily, chunk by chunk: hours of audio never sit in memory at once."""

    def __init__(
        self,
        positives: Sequence[Positive],
        negatives: Sequence[np.ndarray],
        noise: Sequence[np.ndarray],
        plan: SplicePlan,
        rate_hz: int,
    ) -> None:
        if not negatives or sum(len(n) for n in negatives) == 0:
            raise ConfigError("no negative audio: the negatives folder holds no readable audio files")
        if plan.snr_db is not None and not noise:
            raise ConfigError("an SNR was given but no noise files were found")
        self.rate_hz = rate_hz
        self.plan = plan
        rng = np.random.default_rng(plan.seed)
        self.negatives = list(negatives)
        self.noise = [n / rms(n) for n in noise if len(n) and rms(n) > 1e-6]
        self.rng = rng
        order = rng.permutation(len(positives))
        self.positives = [self._levelled(positives[i]) for i in order]
        total_negative = sum(len(n) for n in negatives)
        min_gap = int(plan.min_gap_s * rate_hz)
        slack = total_negative - min_gap * len(self.positives)
        if slack < 0:
            raise ConfigError(
                f"{total_negative / rate_hz / 3600:.2f} h of negatives cannot hold {len(self.positives)} positives "
                f"at least {plan.min_gap_s} s apart; give more negative audio or fewer positives"
            )
        # Random gaps: min_gap each plus a random share of the slack (uniform spacing on average).
        shares = rng.dirichlet(np.ones(len(self.positives) + 1)) * slack
        gaps = (min_gap + shares[:-1]).astype(np.int64)
        self.cuts = np.cumsum(gaps)  # negative-audio offsets where each positive goes
        self.negative_samples = total_negative
        self._bed: np.ndarray | None = None
        self._bed_offset = 0

    def _levelled(self, positive: Positive) -> Positive:
        if self.plan.level_dbfs is None:
            return positive
        start, end = active_span(positive.samples, self.rate_hz)
        speech = positive.samples[start:end] if end > start else positive.samples
        gain = 10 ** (self.plan.level_dbfs / 20) / rms(speech)
        return Positive(positive.keyword, positive.name, positive.samples * np.float32(gain))

    def layout(self) -> SpliceResult:
        """Where each positive's speech lies in the stream."""
        keyword, starts, ends = [], [], []
        inserted = 0
        for cut, positive in zip(self.cuts.tolist(), self.positives, strict=True):
            begin = cut + inserted
            start, end = active_span(positive.samples, self.rate_hz)
            keyword.append(positive.keyword)
            starts.append(begin + start)
            ends.append(begin + end)
            inserted += len(positive.samples)
        return SpliceResult(
            np.array(keyword, np.int64),
            np.array(starts, np.int64),
            np.array(ends, np.int64),
            self.negative_samples,
            self.negative_samples + inserted,
        )

    def _pieces(self) -> Iterator[np.ndarray]:
        """The stream as consecutive pieces: negative audio cut at `cuts`, each positive in its cut."""
        cursor = 0  # offset in the negative audio
        cuts = [*self.cuts.tolist(), self.negative_samples]
        positives: list[Positive | None] = [*self.positives, None]
        file_index, file_offset = 0, 0
        after_positive = False
        for cut, positive in zip(cuts, positives, strict=True):
            while cursor < cut:
                current = self.negatives[file_index]
                take = min(len(current) - file_offset, cut - cursor)
                piece = current[file_offset : file_offset + take]
                before_positive = positive is not None and cursor + take == cut
                if before_positive or after_positive:
                    piece = _faded(piece, out=before_positive, into=after_positive)
                after_positive = False
                yield piece
                cursor += take
                file_offset += take
                if file_offset == len(current):
                    file_index, file_offset = file_index + 1, 0
            if positive is not None:
                yield positive.samples
                after_positive = True

    def chunks(self, chunk_samples: int) -> Iterator[np.ndarray]:
        """Fixed-size chunks (the last may be shorter), with the noise bed mixed in."""
        buffer: list[np.ndarray] = []
        held = 0
        for piece in self._pieces():
            buffer.append(piece)
            held += len(piece)
            while held >= chunk_samples:
                joined = np.concatenate(buffer)
                yield self._noisy(joined[:chunk_samples])
                buffer, held = [joined[chunk_samples:]], held - chunk_samples
        if held:
            yield self._noisy(np.concatenate(buffer))

    def _noisy(self, chunk: np.ndarray) -> np.ndarray:
        if self.plan.snr_db is None:
            return chunk.astype(np.float32, copy=False)
        level = 10 ** ((self.plan.level_dbfs if self.plan.level_dbfs is not None else -26.0) / 20)
        gain = level * 10 ** (-self.plan.snr_db / 20)
        bed = np.empty(len(chunk), np.float32)
        filled = 0
        while filled < len(chunk):
            if self._bed is None or self._bed_offset >= len(self._bed):
                self._bed = self.noise[self.rng.integers(len(self.noise))]
                self._bed_offset = int(self.rng.integers(len(self._bed)))
            take = min(len(chunk) - filled, len(self._bed) - self._bed_offset)
            bed[filled : filled + take] = self._bed[self._bed_offset : self._bed_offset + take]
            filled += take
            self._bed_offset += take
        return (chunk + gain * bed).astype(np.float32)


def _faded(piece: np.ndarray, *, out: bool, into: bool) -> np.ndarray:
    piece = piece.copy()
    ramp = np.linspace(0.0, 1.0, min(FADE_SAMPLES, len(piece)), dtype=np.float32)
    if into:
        piece[: len(ramp)] *= ramp
    if out:
        piece[len(piece) - len(ramp) :] *= ramp[::-1]
    return piece
