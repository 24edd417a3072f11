"""`streamer bench frontend` runs end to end and measures what it says (timings themselves are not asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from streamer.cli.main import build_app


def test_bench_frontend_reports_all_three_ways():
    result = CliRunner().invoke(build_app(), ["bench", "frontend", "--streams", "20", "--rounds", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["frames_per_push"] == 20 * 10  # 100 ms chunks, 10 ms hop, after the tails fill
    for key in ("batched_us_per_frame", "per_stream_us_per_frame", "naive_us_per_frame"):
        assert report[key] > 0
    assert report["fft_backend"] in ("scipy.fft", "numpy.fft")
