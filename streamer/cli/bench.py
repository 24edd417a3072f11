"""`streamer bench ...`: the benchmark sub-command group; each area adds its own benchmark to `bench_app`."""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Benchmarks (baselines run in the same process; see docs/PERFORMANCE.md).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
