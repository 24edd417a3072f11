"""`streamer serve | feed | listen | wyoming | config check` and `streamer bench daemon` (CONTRACT.md §4)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from streamer.cli.bench import bench_app
from streamer.errors import ConfigError

config_app = typer.Typer(help="Inspect daemon configuration.", no_args_is_help=True)
DEFAULT_INGEST = "tcp://127.0.0.1:5555"
DEFAULT_PUBLISH = "tcp://127.0.0.1:5556"


def normalize_argv(argv: list[str]) -> list[str]:
    """CONTRACT's `serve --mic [DEVICE]`: typer has no optional-value options, so `--mic DEVICE` (a value that is
    not another option) becomes `--mic --mic-device DEVICE`. For `cli/main.py` to apply before parsing."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        out.append(argv[index])
        if argv[index] == "--mic" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            out += ["--mic-device", argv[index + 1]]
            index += 1
        index += 1
    return out if argv[:1] == ["serve"] else argv


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("feed")(feed)
    app.command("listen")(listen)
    app.command("wyoming")(wyoming)
    app.add_typer(config_app, name="config")


def _overrides(
    model: Path | None, ingest: str | None, publish: str | None, metrics: str | None, mic: str | None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if model is not None:
        overrides["model"] = {"path": str(model)}
    if ingest is not None:
        overrides["ingest"] = {"endpoint": ingest}
    if publish is not None:
        overrides["publish"] = {"endpoint": publish}
    if metrics is not None:
        if metrics == "off":
            overrides["metrics"] = {"enabled": False}
        else:
            host, sep, port = metrics.rpartition(":")
            if not sep or not port.isdigit():
                raise ConfigError(f"--metrics {metrics!r}: expected HOST:PORT (e.g. 127.0.0.1:9105) or 'off'")
            overrides["metrics"] = {"enabled": True, "host": host or "127.0.0.1", "port": int(port)}
    if mic is not None:
        overrides["mic"] = {"enabled": True, "device": None if mic == "default" else mic}
    return overrides


def serve(
    config: Annotated[Path | None, typer.Option(help="TOML file (configs/); default: built-in defaults")] = None,
    model: Annotated[Path | None, typer.Option(help="ONNX model (default models/keywords/model.onnx)")] = None,
    ingest: Annotated[str | None, typer.Option(help=f"PULL endpoint to bind (default {DEFAULT_INGEST})")] = None,
    publish: Annotated[str | None, typer.Option(help=f"PUB endpoint to bind (default {DEFAULT_PUBLISH})")] = None,
    metrics: Annotated[str | None, typer.Option(help="HOST:PORT of the Prometheus endpoint, or 'off'")] = None,
    mic: Annotated[bool, typer.Option("--mic", help="add a microphone stream 'mic' (default input device)")] = False,
    mic_device: Annotated[str | None, typer.Option(help="microphone name or index (implies --mic)")] = None,
) -> None:
    """Run the daemon in the foreground (what systemd runs); SIGTERM drains and exits 0, SIGHUP reloads."""
    from streamer.daemon.config import load_config
    from streamer.daemon.server import serve as run_daemon

    overrides = _overrides(model, ingest, publish, metrics, mic_device or ("default" if mic else None))
    resolved = load_config(config, overrides)
    logging.getLogger("streamer").setLevel(resolved.log_level)
    raise typer.Exit(run_daemon(resolved, config, overrides))


@config_app.command("check")
def config_check(
    file: Annotated[Path | None, typer.Argument(help="TOML file; omitted: defaults and environment")] = None,
) -> None:
    """Validate a configuration (file + STREAMER_* environment) and print it fully resolved; exit 2 if bad."""
    from streamer.daemon.config import load_config, to_toml

    typer.echo(to_toml(load_config(file)), nl=False)


def feed(
    files: Annotated[list[Path] | None, typer.Argument(help="wav/flac/ogg audio or csv/npy sensor files")] = None,
    endpoint: Annotated[
        str, typer.Option(help="daemon ingest endpoint; shards: every daemon's, comma-separated, in one order")
    ] = DEFAULT_INGEST,
    stream: Annotated[
        str | None, typer.Option(help="stream id (numbered when several files; default: file stem)")
    ] = None,
    chunk_ms: Annotated[float, typer.Option(help="chunk length per message")] = 100.0,
    fast: Annotated[bool, typer.Option("--fast", help="no pacing: send as fast as the daemon answers")] = False,
    publish: Annotated[
        str, typer.Option(help="daemon publish endpoint(s), as --endpoint (flow control for --fast)")
    ] = DEFAULT_PUBLISH,
    rate_hz: Annotated[int | None, typer.Option(help="sample rate of csv/npy files (else FILE.json sidecar)")] = None,
    streams: Annotated[int | None, typer.Option(help="synthetic load: N streams at real-time cadence")] = None,
    duration_s: Annotated[float, typer.Option(help="with --streams: how long to send")] = 10.0,
    window: Annotated[
        int,
        typer.Option(
            min=1,
            help="--fast: unanswered chunks allowed per stream (keep it <= the daemon's streams.max_queued_per_stream)",
        ),
    ] = 8,
) -> None:
    """Send files as streams (paced in real time unless --fast), or synthetic load with --streams N."""
    if streams is not None:
        from streamer.bench.daemon import LoadSpec, run_load

        load = run_load(LoadSpec(streams=streams, duration_s=duration_s, chunk_ms=chunk_ms), endpoint, publish)
        typer.echo(load.summary())
        return
    if not files:
        raise ConfigError("feed: give at least one file, or --streams N for synthetic load")
    from streamer.daemon.feeder import feed as send_files
    from streamer.daemon.feeder import load_source, stream_ids

    sources = [load_source(path, sid, rate_hz) for path, sid in zip(files, stream_ids(files, stream), strict=True)]
    result = send_files(sources, endpoint, chunk_ms, fast=fast, publish_endpoint=publish, window=window)
    typer.echo(
        f"sent {result.chunks} chunks of {result.streams} stream(s), {result.audio_s:.1f} s of signal "
        f"in {result.wall_s:.1f} s" + (f"; {result.answered} answered" if fast else "")
    )


def listen(
    endpoint: Annotated[
        str, typer.Option(help="daemon publish endpoint; shards: all, comma-separated")
    ] = DEFAULT_PUBLISH,
    stream: Annotated[list[str] | None, typer.Option(help="only these streams (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    duration_s: Annotated[float | None, typer.Option(help="stop after this long")] = None,
) -> None:
    """Print predictions, events and status as they arrive (a live table, or JSON lines)."""
    from streamer.daemon.view import listen as run_listen

    with contextlib.suppress(KeyboardInterrupt):
        run_listen(endpoint, stream or None, as_json, duration_s=duration_s)


def wyoming(
    uri: Annotated[str, typer.Option(help="where Wyoming clients connect: tcp://HOST:PORT or unix://PATH")] = (
        "tcp://127.0.0.1:10400"
    ),
    config: Annotated[Path | None, typer.Option(help="TOML file: its model and detection sections are used")] = None,
    model: Annotated[Path | None, typer.Option(help="ONNX keyword model (default models/keywords/model.onnx)")] = None,
    zeroconf: Annotated[
        bool, typer.Option(help="announce the service by mDNS, so Home Assistant discovers it (needs a LAN --uri)")
    ] = False,
    zeroconf_name: Annotated[
        str | None, typer.Option(help="the name announced (default streamer-HOSTNAME)", show_default=False)
    ] = None,
) -> None:
    """Serve the keyword model to Home Assistant over its Wyoming wake-word protocol (docs/operations.md)."""
    from streamer.daemon.config import load_config
    from streamer.daemon.mdns import default_name
    from streamer.daemon.wyoming import serve as run_wyoming

    resolved = load_config(config, _overrides(model, None, None, None, None))
    logging.getLogger("streamer").setLevel(resolved.log_level)
    name = (zeroconf_name or default_name()) if zeroconf else None
    with contextlib.suppress(KeyboardInterrupt):
        run_wyoming(resolved, uri, zeroconf_name=name)


@bench_app.command("daemon")
def bench_daemon(
    streams: Annotated[int | None, typer.Option(help="only this stream count (no search)")] = None,
    model: Annotated[
        Path, typer.Option(help="ONNX keyword model (default: the log-mel model built for many streams)")
    ] = Path("models/keywords-lite/model.onnx"),
    duration_s: Annotated[float, typer.Option(help="seconds measured per load level")] = 6.0,
    baseline: Annotated[bool, typer.Option(help="also run the naive one-call-per-message daemon")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Streams held in real time (16 kHz, 100 ms chunks, p99 <= 100 ms) by the daemon and the naive baseline."""
    from streamer.bench.daemon import run_daemon_bench

    run_daemon_bench(model, streams=streams, duration_s=duration_s, baseline=baseline, as_json=as_json)
