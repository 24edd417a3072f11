"""`streamer bench frontend` runs end to end and measures what it says (timings themselves are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_frontend_reports_all_three_ways():
    args = ["bench", "frontend", "--streams", "20", "--rounds", "1", "--json"]
    code = f"from streamer.cli.main import main; main({args!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["frames_per_push"] == 20 * 10  # 100 ms chunks, 10 ms hop, after the tails fill
    for key in ("batched_us_per_frame", "per_stream_us_per_frame", "naive_us_per_frame"):
        assert report[key] > 0
    assert report["fft_backend"] in ("scipy.fft", "numpy.fft")
