"""The evaluation stream: every positive lands where the layout says, apart by the minimum gap, however chunked."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.evaluate.splice import Positive, SplicePlan, Splicer

RATE_HZ = 1000  # small rate: the arithmetic is the same, the arrays are tiny


def _positive(keyword: int, length: int, marker: float) -> Positive:
    samples = np.zeros(length + 20, np.float32)
    samples[10 : 10 + length] = marker  # 10 silent samples each side: the "speech" is the middle
    return Positive(keyword, f"p{marker}", samples)


@settings(max_examples=60, deadline=None)
@given(
    # Whole 10 ms frames (10 samples here): a positive's speech span is found at 10 ms resolution.
    lengths=st.lists(st.integers(2, 30).map(lambda frames: 10 * frames), min_size=1, max_size=8),
    negative_lengths=st.lists(st.integers(500, 4000), min_size=1, max_size=5),
    chunk=st.integers(1, 2000),
    seed=st.integers(0, 1000),
)
def test_layout_matches_the_stream(lengths: list[int], negative_lengths: list[int], chunk: int, seed: int) -> None:
    positives = [_positive(i % 2, n, 1.0 + i) for i, n in enumerate(lengths)]
    negatives = [np.full(n, 1e-3, np.float32) for n in negative_lengths]
    min_gap_s = 0.05
    if sum(negative_lengths) < len(lengths) * min_gap_s * RATE_HZ:
        return
    plan = SplicePlan(min_gap_s=min_gap_s, level_dbfs=None, seed=seed)
    splicer = Splicer(positives, negatives, [], plan, RATE_HZ)
    layout = splicer.layout()
    stream = np.concatenate(list(splicer.chunks(chunk)))
    assert len(stream) == layout.total_samples == sum(negative_lengths) + sum(n + 20 for n in lengths)
    assert layout.negative_samples == sum(negative_lengths)
    markers = sorted(1.0 + i for i in range(len(lengths)))
    found = []
    for start, end, keyword in zip(layout.start_sample, layout.end_sample, layout.keyword, strict=True):
        span = stream[start:end]
        assert np.all(span == span[0]) and span[0] >= 1.0  # exactly one positive's speech, whole
        assert int(span[0] - 1.0) % 2 == keyword
        assert stream[start - 1] < 1.0 and (end == len(stream) or stream[end] < 1.0)
        found.append(float(span[0]))
    assert sorted(found) == markers  # every positive once
    starts = np.sort(layout.start_sample)
    # At least min_gap of negative audio before each positive (plus the 2 × 10 silent samples around them).
    assert starts[0] >= min_gap_s * RATE_HZ
    assert np.all(np.diff(starts) >= min_gap_s * RATE_HZ)
    # The same stream whatever the chunk size.
    again = Splicer(positives, negatives, [], plan, RATE_HZ)
    assert np.array_equal(np.concatenate(list(again.chunks(997))), stream)


def test_noise_bed_sits_at_the_requested_snr() -> None:
    rng = np.random.default_rng(0)
    positive = Positive(0, "p", (0.05 * rng.standard_normal(2000)).astype(np.float32))
    silence = [np.zeros(60 * RATE_HZ, np.float32)]
    noise = [rng.standard_normal(5000).astype(np.float32)]
    plan = SplicePlan(min_gap_s=1.0, level_dbfs=-26.0, snr_db=10.0, seed=1)
    stream = np.concatenate(list(Splicer([positive], silence, noise, plan, RATE_HZ).chunks(4096)))
    layout = Splicer([positive], silence, noise, plan, RATE_HZ).layout()
    outside = np.ones(len(stream), bool)
    outside[layout.start_sample[0] : layout.end_sample[0]] = False
    noise_dbfs = 20 * np.log10(np.sqrt(np.mean(stream[outside] ** 2)))
    assert abs(noise_dbfs - (-26.0 - 10.0)) < 0.3
