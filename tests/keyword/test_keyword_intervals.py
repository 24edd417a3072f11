"""The confidence intervals eval-keyword reports, against published values and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, poisson

from streamer.evaluate.intervals import poisson_rate, wilson


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),  # Newcombe (1998), Table I
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe (1998): 81/263
    ],
)
def test_wilson_matches_published_intervals(successes: int, trials: int, low: float, high: float) -> None:
    got = wilson(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize(
    ("count", "low", "high"),
    [(0, 0.0, 3.689), (1, 0.0253, 5.572), (2, 0.2422, 7.225), (10, 4.795, 18.39)],  # Garwood (1936) tables
)
def test_poisson_interval_matches_the_exact_table(count: int, low: float, high: float) -> None:
    assert poisson_rate(count, 1.0) == pytest.approx((low, high), rel=1e-3, abs=1e-4)
    # per hour: the same count over 2 h halves the rate and its interval
    assert poisson_rate(count, 2.0) == pytest.approx((low / 2, high / 2), rel=1e-3, abs=1e-4)


def test_exact_poisson_interval_edges_have_the_promised_tail_probabilities() -> None:
    for count in (1, 3, 7):
        low, high = poisson_rate(count, 1.0)
        assert poisson.sf(count - 1, low) == pytest.approx(0.025, abs=1e-6)  # P(X >= count | low)
        assert poisson.cdf(count, high) == pytest.approx(0.025, abs=1e-6)  # P(X <= count | high)


def test_wilson_covers_close_to_95_percent() -> None:
    """Exact coverage over all outcomes of Binomial(n, p): near 0.95 for the positive counts evaluations use."""
    for n, p in ((432, 0.36), (108, 0.05), (60, 0.5)):
        k = np.arange(n + 1)
        covered = np.array([lo <= p <= hi for lo, hi in (wilson(int(i), n) for i in k)])
        coverage = float(binom.pmf(k, n, p)[covered].sum())
        assert 0.92 < coverage < 0.975, (n, p, coverage)


def test_nothing_to_count_gives_no_interval() -> None:
    assert all(math.isnan(v) for v in wilson(0, 0))
    assert all(math.isnan(v) for v in poisson_rate(0, 0.0))
