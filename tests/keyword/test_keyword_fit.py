"""Keyword training: SpecAugment frequency masking (whole mel bands set to their mean, per lane, for a segment) and
the training device check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from streamer.train.keyword.fit import mask_frequencies  # noqa: E402


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
