"""`streamer bench ...`: the benchmark sub-command group; each area adds its own benchmark to `bench_app`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from streamer.errors import ConfigError

bench_app = typer.Typer(
    help="Benchmarks (baselines run in the same process; see docs/PERFORMANCE.md).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


@bench_app.command("engine")
def bench_engine(
    streams: Annotated[str, typer.Option(help="comma-separated stream counts")] = "100,1000",
    frames: Annotated[str, typer.Option(help="comma-separated frames per chunk")] = "1,10",
    rounds: Annotated[int, typer.Option(help="interleaved measurement rounds (median taken)")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")] = False,
) -> None:
    """Engine.step frames/s vs bare batched session.run, per-stream session.run, torch eager, and the GEMM limit."""
    from streamer.bench.engine import run_engine_bench

    rows = run_engine_bench(_ints(streams), _ints(frames), rounds)
    if as_json:
        for row in rows:
            print(json.dumps(row.to_json()))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Engine.step, 2-layer GRU 40→64, one intra-op thread (frames/s, medians)")
    for column in (
        "streams",
        "frames/chunk",
        "engine",
        "bare run",
        "overhead",
        "per-stream",
        "× per-stream",
        "torch eager",
        "× torch",
        "gemm limit",
        "bare % gemm",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        q = r.ratios()
        table.add_row(
            str(r.streams),
            str(r.frames_per_chunk),
            f"{r.engine_fps:,.0f}",
            f"{r.bare_fps:,.0f}",
            f"{q['engine_overhead_vs_bare']:+.0%}",
            f"{r.per_stream_fps:,.0f}",
            f"{q['engine_vs_per_stream']:.1f}×",
            f"{r.torch_fps:,.0f}",
            f"{q['engine_vs_torch']:.1f}×",
            f"{r.gemm_fps:,.0f}",
            f"{q['bare_fraction_of_gemm']:.0%}",
        )
    Console(width=200).print(table)


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}") from None


@bench_app.command("fuzz")
def bench_fuzz(
    messages: Annotated[int, typer.Option(help="how many generated messages")] = 100_000,
    seed: Annotated[int, typer.Option(help="generator seed (runs are reproducible)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fuzz the wire decoder: every message decodes or is refused with a status code; memory stays bounded."""
    from streamer.bench.fuzz import run_fuzz

    report = run_fuzz(messages, seed)
    summary = report.to_json()
    if as_json:
        print(json.dumps(summary))
    else:
        print(
            f"{report.messages:,} messages in {report.seconds:.1f} s: {report.accepted:,} accepted, "
            f"rejected {dict(report.rejected)}, peak decoder overhead {report.peak_overhead_bytes:,} bytes"
        )
        for crash in report.crashes[:20]:
            print(f"  DEFECT {crash}")
    if not report.ok:
        raise typer.Exit(1)


@bench_app.command("soak")
def bench_soak(
    streams: Annotated[
        int, typer.Option(help="streams (16 kHz, 100 ms chunks); ~70 % of `bench daemon` capacity")
    ] = 700,
    minutes: Annotated[float, typer.Option(help="how long")] = 10.0,
    model: Annotated[Path, typer.Option(help="ONNX keyword model")] = Path("models/keywords-lite/model.onnx"),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object at the end")] = False,
) -> None:
    """Steady real-time load for minutes: RSS slope (target < 1 MB/min), drops (target 0), p99 start vs end."""
    from streamer.bench.soak import run_soak

    if not model.is_file():
        raise ConfigError(f"bench soak: model {model} not found (pass --model)")
    report = run_soak(model, streams, minutes)
    summary = report.to_json()
    if as_json:
        print(json.dumps(summary))
    else:
        print(
            f"soak {streams} streams, {minutes:g} min: RSS slope {summary['rss_slope_mb_per_min']} MB/min "
            f"({summary['rss_first_mb']} → {summary['rss_last_mb']} MB), drops {summary['drops']}, "
            f"p99 {summary['p99_first_ms']} → {summary['p99_last_ms']} ms"
        )
    if not report.ok:
        raise typer.Exit(1)


@bench_app.command("keyword-latency")
def bench_keyword_latency(
    positives: Annotated[
        Path, typer.Option(help="keyword clips: one sub-folder per label (as eval-keyword), or loose files")
    ],
    model: Annotated[Path, typer.Option(help="ONNX keyword model")] = Path("models/keywords/model.onnx"),
    negatives: Annotated[
        Path | None, typer.Option(help="audio between the keywords \\[default: a -70 dBFS noise floor]")
    ] = None,
    noise: Annotated[Path | None, typer.Option(help="folder of noise/music mixed over the whole stream")] = None,
    snr_db: Annotated[float | None, typer.Option(help="noise level: keyword speech RMS over noise RMS")] = None,
    chunk_ms: Annotated[float, typer.Option(help="audio per message, sent when its last sample is captured")] = 100.0,
    max_positives: Annotated[int, typer.Option(help="play at most this many clips (seeded, even per keyword)")] = 60,
    min_gap_s: Annotated[float, typer.Option(help="least audio between two keywords (mean about 1 s more)")] = 3.0,
    tolerance_s: Annotated[float, typer.Option(help="a hit may come this late after the keyword's end")] = 1.0,
    seed: Annotated[int, typer.Option(help="clip choice, splice positions, noise excerpts")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Keyword end → event at a subscriber, through a real daemon, played in real time (median target 300 ms)."""
    from streamer.bench.keyword_latency import LatencyOptions, describe, run_keyword_latency

    options = LatencyOptions(
        positives_dir=positives,
        negatives_dir=negatives,
        noise_dir=noise,
        snr_db=snr_db,
        chunk_ms=chunk_ms,
        max_positives=max_positives,
        min_gap_s=min_gap_s,
        tolerance_after_s=tolerance_s,
        seed=seed,
    )
    report = run_keyword_latency(model, options)
    print(json.dumps(report) if as_json else describe(report))
