"""The UEA .ts parser, the data loaders' errors, and `streamer train-sensor` argument checking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamer.errors import ConfigError
from streamer.train.datasets import load_basicmotions, load_watch, parse_ts

TS_TEXT = """# a comment
@problemName Tiny
@classLabel true Standing Running
@data
1.0,2.0,3.0:4.0,5.0,6.0:Running
-1,0,1:0.5,0.25,0:Standing
"""


def test_parse_ts_reads_cases_as_steps_by_channels_with_their_labels() -> None:
    cases, labels, classes = parse_ts(TS_TEXT, "tiny.ts")
    assert classes == ["Standing", "Running"] and labels == ["Running", "Standing"]
    np.testing.assert_array_equal(cases[0], [[1, 4], [2, 5], [3, 6]])
    assert cases[1].dtype == np.float32 and cases[1].shape == (3, 2)


def test_parse_ts_names_the_bad_line() -> None:
    with pytest.raises(ConfigError, match=r"tiny.ts:5: not a .ts case line"):
        parse_ts(TS_TEXT.replace("1.0,2.0", "1.0,oops"), "tiny.ts")
    with pytest.raises(ConfigError, match="no @data cases"):
        parse_ts("@data\n", "empty.ts")


def test_loaders_say_how_to_install_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"install-sensor-data\.sh"):
        load_watch(tmp_path / "watch_dataset.npy")
    with pytest.raises(ConfigError, match=r"install-sensor-data\.sh"):
        load_basicmotions("train", tmp_path)
    with pytest.raises(ConfigError, match="expected 'train' or 'test'"):
        load_basicmotions("validation")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nope", "--out", "x"], "unknown sensor data set 'nope'"),
        (["watch", "--out", "x", "--iterations", "0"], "--iterations is 0"),
    ],
)
def test_train_sensor_refuses_bad_arguments_with_exit_code_2(args: list[str], needle: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "streamer.cli.main", "train-sensor", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and needle in result.stderr
    assert not (tmp_path / "x").exists()
