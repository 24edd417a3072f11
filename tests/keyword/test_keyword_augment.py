"""Keyword training augmentation: the random EQ's bounds, and streams that do not use it are reproduced exactly."""

from __future__ import annotations

import numpy as np

from streamer.train.keyword.assemble import Pools, StreamRecipe, assemble
from streamer.train.keyword.augment import augment_clip, random_eq

RATE_HZ = 16000


def test_random_eq_colours_within_its_bounds() -> None:
    rng = np.random.default_rng(0)
    impulse = np.zeros(4096, np.float32)
    impulse[0] = 1.0
    for _ in range(20):
        response = np.abs(np.fft.rfft(random_eq(impulse, rng, max_db=8.0)))
        gain_db = 20 * np.log10(response)
        assert gain_db.max() <= 8.0 + 1e-3 and gain_db.min() >= -8.0 - 1e-3
        assert np.ptp(gain_db) > 1.0  # it does colour
        freqs_hz = np.fft.rfftfreq(len(impulse), 1 / RATE_HZ)
        assert np.ptp(gain_db[freqs_hz <= 50]) < 1e-6  # flat below 50 Hz


def test_no_eq_draws_no_random_numbers() -> None:
    clip = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(augment_clip(clip, a), augment_clip(clip, b, eq_probability=0.0))
    assert a.random() == b.random()  # the generators are still in step


def test_streams_without_eq_are_unchanged_by_the_option() -> None:
    rng = np.random.default_rng(2)
    pools = Pools([[rng.standard_normal(6000).astype(np.float32)]], [rng.standard_normal(9000).astype(np.float32)])
    plain, _ = assemble(8.0, pools, np.random.default_rng(3), StreamRecipe())
    again, _ = assemble(8.0, pools, np.random.default_rng(3), StreamRecipe(eq_probability=0.0))
    coloured, _ = assemble(8.0, pools, np.random.default_rng(3), StreamRecipe(eq_probability=1.0))
    assert np.array_equal(plain, again)
    assert not np.array_equal(plain, coloured)
