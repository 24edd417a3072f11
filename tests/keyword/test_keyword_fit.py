"""Keyword training: SpecAugment frequency masking (whole mel bands set to their mean, per lane, for a segment),
vocal tract length perturbation on the mel axis, dropout, and the training device check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from streamer.frontend.melspec import LogMelParams, mel_edges_hz  # noqa: E402
from streamer.train.keyword.fit import mask_frequencies, warp_bands, warp_frequencies  # noqa: E402
from streamer.train.keyword.model import KeywordNet  # noqa: E402

CENTRES_HZ = mel_edges_hz(LogMelParams())[1:-1]


def test_masks_are_whole_bands_set_to_the_mean_and_nothing_else_changes() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(64, 7, 40)
    mean = torch.linspace(-5.0, -1.0, 40)  # distinct per bin, never equal to a random feature
    masked = mask_frequencies(x, mean, 2, 6, generator)
    hidden = masked == mean
    assert torch.equal(hidden.any(dim=1), hidden.all(dim=1))  # a masked bin is masked at every step of the lane
    assert torch.equal(masked[~hidden], x[~hidden])
    per_lane = hidden.all(dim=1).sum(dim=1)
    assert int(per_lane.max()) <= 12 and int(per_lane.sum()) > 0  # at most 2 bands of 6 bins, and some masking


def test_no_masks_leaves_the_input_alone() -> None:
    x = torch.randn(4, 3, 40)
    assert mask_frequencies(x, torch.zeros(40), 0, 6, torch.Generator()) is x
    assert mask_frequencies(x, torch.zeros(40), 2, 0, torch.Generator()) is x


def test_a_warp_of_one_changes_nothing_and_no_warp_draws_nothing() -> None:
    x = torch.randn(3, 5, 40)
    assert torch.equal(warp_bands(x, CENTRES_HZ, np.ones(3)), x)
    generator = torch.Generator().manual_seed(1)
    assert warp_frequencies(x, CENTRES_HZ, 0.0, generator) is x
    assert torch.equal(torch.rand(1, generator=generator), torch.rand(1, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("factor", [0.9, 1.12])
def test_a_warp_moves_a_formant_to_factor_times_its_frequency(factor: float) -> None:
    x = torch.zeros(1, 2, 40)
    x[..., 20] = 1.0  # energy at band 20's centre only
    peak = int(warp_bands(x, CENTRES_HZ, np.array([factor]))[0, 0].argmax())
    assert peak == int(np.argmin(np.abs(CENTRES_HZ - factor * CENTRES_HZ[20])))
    assert (peak > 20) == (factor > 1)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.8, 1.25), st.integers(0, 2**31 - 1))
def test_warped_values_stay_between_neighbouring_bands(factor: float, seed: int) -> None:
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(1, 4, 40)).astype(np.float32))
    warped = warp_bands(x, CENTRES_HZ, np.array([factor]))
    assert warped.shape == x.shape
    assert bool((warped >= x.min(dim=2, keepdim=True).values - 1e-6).all())
    assert bool((warped <= x.max(dim=2, keepdim=True).values + 1e-6).all())
    edge = 0 if factor > 1 else 39  # what moved out of range is filled by the edge band
    assert torch.allclose(warped[..., edge], x[..., edge])


def test_warp_factors_per_lane_stay_in_range() -> None:
    x = torch.zeros(200, 1, 40)
    x[..., 20] = 1.0
    peaks = warp_frequencies(x, CENTRES_HZ, 0.1, torch.Generator().manual_seed(0))[:, 0].argmax(dim=1)
    lowest = int(np.argmin(np.abs(CENTRES_HZ - CENTRES_HZ[20] / 1.1)))
    highest = int(np.argmin(np.abs(CENTRES_HZ - CENTRES_HZ[20] * 1.1)))
    assert int(peaks.min()) >= lowest and int(peaks.max()) <= highest
    assert len(set(peaks.tolist())) > 1  # lanes get different factors


def test_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    plain = KeywordNet(40, 3, hidden=16, layers=2)
    dropped = KeywordNet(40, 3, hidden=16, layers=2, dropout=0.5)
    dropped.load_state_dict(plain.state_dict())  # dropout adds no parameters
    x, h = torch.randn(2, 9, 40), plain.zero_state(2)
    dropped.eval()
    assert torch.equal(dropped(x, h)[0], plain(x, h)[0])
    dropped.train()
    assert not torch.equal(dropped(x, h)[0], plain(x, h)[0])


@pytest.mark.parametrize(
    ("device", "message"),
    [("gpu", "expected 'cpu', 'cuda' or 'cuda:N'"), ("cuda:99", "sees")],
)
def test_train_keyword_refuses_a_device_it_does_not_have(device: str, message: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "streamer.cli.main", "train-keyword", "hey there", "--out", str(tmp_path / "m")]
    result = subprocess.run(
        [*command, "--device", device],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "--device" in result.stderr
    assert not (tmp_path / "m").exists()  # refused before any rendering


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--dropout", "1.0"], ("dropout=", "warp=")),
        (["--warp", "-0.1"], ("dropout=", "warp=")),
        (["--warp", "0.9"], ("dropout=", "warp=")),
        (["--hop-ms", "0"], ("--hop-ms", "window")),
        (["--hop-ms", "30", "--win-ms", "25"], ("--hop-ms", "window")),
        (["--win-ms", "100"], ("--hop-ms", "window")),
        (["--features", "mfcc"], ("--features", "'embedding'")),
        (["--segment-steps", "0"], ("--segment-steps", "≥ 1")),
        (["--ensemble", "0"], ("--ensemble 0", "--features embedding")),
        (["--ensemble", "2", "--features", "logmel"], ("--ensemble 2", "--features embedding")),
    ],
)
def test_train_keyword_refuses_out_of_range_options(option: list[str], named: tuple[str, str], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "streamer.cli.main", "train-keyword", "hey there", "--out", str(tmp_path / "m")]
    result = subprocess.run([*command, *option], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert all(name in result.stderr for name in named), result.stderr
    assert not (tmp_path / "m").exists()


def test_the_fft_grows_with_the_window() -> None:
    from streamer.cli.keyword import _frontend

    assert _frontend(20.0, 32.0)["n_fft"] == 512 and _frontend(20.0, 32.0)["hop_ms"] == 20.0
    assert _frontend(10.0, 25.0) == LogMelParams().to_dict()
    assert _frontend(20.0, 40.0)["n_fft"] == 1024
