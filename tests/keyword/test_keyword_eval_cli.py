"""eval-keyword end to end with a model whose answers are known: real exporter, real Pipeline, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from beep_model import RATE_HZ, tone, write_beep_rig

TONE_S = 0.4


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalrig")
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(RATE_HZ * 60) * 10 ** (-70 / 20)).astype(np.float32)
    write_beep_rig(root, rng, quiet, TONE_S, positives=6)
    (root / "negatives").mkdir()
    sf.write(root / "negatives" / "quiet.wav", quiet, RATE_HZ)
    with_false_alarms = quiet.copy()
    for start_s in (20.0, 40.0):  # two beeps inside the negatives: exactly two false accepts
        beep = tone(rng, TONE_S)
        start = int(start_s * RATE_HZ)
        with_false_alarms[start : start + len(beep)] += beep
    sf.write(root / "negatives" / "beeps.flac", with_false_alarms, RATE_HZ)
    return root


def _eval(rig: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "eval-keyword",
            str(rig / "model.onnx"),
            "--positives",
            str(rig / "positives"),
            "--negatives",
            str(rig / "negatives"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_eval_keyword_counts_known_events(rig: Path, tmp_path: Path) -> None:
    done = _eval(rig, "--json", "--plot", str(tmp_path / "det.png"), "--min-gap-s", "5")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["positives"] == 6
    assert report["negative_hours"] == pytest.approx(120 / 3600, rel=1e-4)
    default = report["default"]
    assert (default["misses"], default["false_accepts"]) == (0, 2)
    assert report["missed_at_defaults"] == []
    assert default["fa_per_hour"] == pytest.approx(2 / (120 / 3600), rel=1e-3)
    # 95 % intervals: 0 misses in 6 (Wilson 0-39.0 %), 2 false accepts in 2 min (exact Poisson 0.242-7.22 per
    # unit, i.e. 7.3-217 FA/h): a handful of counts says little, and the report shows how little.
    assert default["frr_ci95"] == pytest.approx([0.0, 0.3903], abs=1e-4)
    assert default["fa_per_hour_ci95"] == pytest.approx([0.2422 * 30, 7.2247 * 30], rel=1e-3)
    # The event fires 2 steps (patience) into the tone; the keyword "ends" when the tone does: about -0.4 s.
    assert -TONE_S * 1000 <= report["median_latency_ms"] <= -TONE_S * 1000 + 60
    # Every threshold that catches the positives catches the two beeps in the negatives as well:
    # 0.5 FA/h is out of reach, and the report says so instead of printing a rate.
    assert report["frr_at_0_5_fa_per_hour"] is None
    assert report["thresholds"]["0_5_fa_per_hour"] is None
    assert (tmp_path / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_keyword_without_false_alarms_reaches_the_operating_points(rig: Path, tmp_path: Path) -> None:
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    (negatives / "quiet.wav").symlink_to(rig / "negatives" / "quiet.wav")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "eval-keyword",
            str(rig / "model.onnx"),
            "--positives",
            str(rig / "positives"),
            "--negatives",
            str(negatives),
            "--negative-hours",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["negative_hours"] >= 0.05  # the one file looped up to the asked duration
    assert report["frr_at_0_5_fa_per_hour"] == 0.0
    assert report["frr_at_1_fa_per_hour"] == 0.0
    point = report["operating_points"]["0_5_fa_per_hour"]
    assert point["fa_per_hour_ci95"][0] == 0.0 and point["fa_per_hour_ci95"][1] == pytest.approx(
        3.689 / report["negative_hours"], rel=1e-3
    )  # no false accept in 3 min still allows ~74 FA/h


def test_eval_keyword_refuses_unknown_label_folder(rig: Path, tmp_path: Path) -> None:
    (tmp_path / "positives" / "bleep").mkdir(parents=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "eval-keyword",
            str(rig / "model.onnx"),
            "--positives",
            str(tmp_path / "positives"),
            "--negatives",
            str(rig / "negatives"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "bleep" in done.stderr and "beep" in done.stderr


def test_evaluation_never_imports_torch() -> None:
    code = (
        "import sys, streamer.evaluate.run, streamer.evaluate.plot, streamer.cli.keyword; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60, check=False).returncode == 0
