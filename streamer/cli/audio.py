"""`streamer devices` (audio input devices) and `streamer bench frontend` (log-mel cost per frame)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from streamer.cli.bench import bench_app
from streamer.errors import DeviceError


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object per device")] = False,
) -> None:
    """List audio input devices (pass one to `serve --mic` by index or name)."""
    from streamer.sources.devices import NO_DEVICE_HINT, list_input_devices

    found = list_input_devices()
    if not found:
        raise DeviceError(NO_DEVICE_HINT)
    if as_json:
        for device in found:
            print(json.dumps(device.to_dict()))
        return
    print(f"{'':2}{'index':>5}  {'name':<32} {'host api':<12} {'channels':>8} {'default rate':>13}")
    for d in found:
        mark = "*" if d.is_default else " "
        print(
            f"{mark:2}{d.index:>5}  {d.name:<32} {d.host_api:<12} {d.max_input_channels:>8} "
            f"{d.default_sample_rate_hz:>10} Hz"
        )
    print("* = default input")


@bench_app.command("frontend")
def bench_frontend(
    streams: Annotated[int, typer.Option(help="streams pushed together")] = 1000,
    chunk_ms: Annotated[float, typer.Option(help="audio per stream per push")] = 100.0,
    rate_hz: Annotated[int, typer.Option(help="input rate (16000: the model's; others are resampled)")] = 16000,
    rounds: Annotated[int, typer.Option(help="interleaved measurement rounds (median taken)")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Log-mel cost per 10 ms frame: all streams in one push vs one push per stream vs naive numpy."""
    from streamer.bench.frontend import run_frontend_bench

    r = run_frontend_bench(streams, chunk_ms, rate_hz, rounds)
    if as_json:
        print(json.dumps(r.to_json()))
        return
    print(
        f"log-mel 40 × 25/10 ms, {r.streams} streams × {r.chunk_ms:g} ms at {r.rate_hz} Hz "
        f"({r.frames_per_push:,.0f} frames per push), FFT {r.fft_backend}, {r.machine}; CPU µs per frame, medians:"
    )
    print(f"  batched (one push)     {r.batched_us_per_frame:8.2f}")
    print(f"  per-stream pushes      {r.per_stream_us_per_frame:8.2f}   ({r.speedup_vs_per_stream:.1f}× batched)")
    if r.naive_us_per_frame is not None:
        print(f"  naive numpy per stream {r.naive_us_per_frame:8.2f}")
    print(f"  → one core featurises {r.realtime_streams_per_core:,.0f} real-time streams")
