"""95 % confidence intervals for the two counts a keyword evaluation rests on, so a report says how far its
figures could move on another draw of the same kind of audio:

- the false-reject rate, `misses` of `positives` (a binomial proportion): Wilson's score interval, which stays
  inside [0, 1] and behaves at 0 and at all misses, where the textbook normal interval does not;
- false accepts per hour, `count` in `hours` of negatives (a Poisson rate): the exact (Garwood) interval from the
  chi-square distribution. At these rates the count is 0-3, and one false accept in 2 h is 0.5 FA/h with an
  interval of about 0.01-2.8 FA/h: the ≤ 0.5 FA/h operating point is a statement about one or two events.
"""

from __future__ import annotations

import math

from scipy.stats import chi2, norm

LEVEL = 0.95


def wilson(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval for a proportion successes / trials; (nan, nan) without trials."""
    if trials <= 0:
        return (math.nan, math.nan)
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (max(0.0, centre - half), min(1.0, centre + half))


def poisson_rate(count: int, exposure: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Garwood) interval for a rate count / exposure; (nan, nan) without exposure."""
    if exposure <= 0:
        return (math.nan, math.nan)
    alpha = 1 - level
    low = float(chi2.ppf(alpha / 2, 2 * count)) / 2 if count > 0 else 0.0
    high = float(chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return (low / exposure, high / exposure)
