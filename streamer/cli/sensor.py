"""`streamer train-sensor`: train, export and evaluate a per-step sensor classifier on a shipped data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamer.errors import ConfigError


def train_sensor(
    dataset: Annotated[str, typer.Argument(help="watch (seglearn, 50 Hz, 7 exercises) or basicmotions (UEA, 10 Hz)")],
    out: Annotated[Path, typer.Option(help="folder for model.onnx, metrics.json, accuracy_vs_seen.png, README.md")],
    seed: Annotated[int | None, typer.Option(help="random seed (default 0)")] = None,
    iterations: Annotated[int | None, typer.Option(help="training iterations (default: the data set's recipe)")] = None,
    hidden: Annotated[int | None, typer.Option(help="GRU units (default: the data set's recipe)")] = None,
) -> None:
    """Train a stateful GRU that emits a class at every step, export it with its sensor frontend, evaluate it
    on held-out data as served, and write a model card. CPU, one thread, minutes."""
    from streamer.train.sensor import recipe, train_and_export

    if iterations is not None and iterations < 1:
        raise ConfigError(f"--iterations is {iterations}, expected ≥ 1")
    if hidden is not None and hidden < 1:
        raise ConfigError(f"--hidden is {hidden}, expected ≥ 1")
    config = recipe(dataset, seed=seed, iterations=iterations, hidden=hidden)
    train_and_export(config, out, log=lambda line: typer.echo(line, err=True))


def register(app: typer.Typer) -> None:
    app.command("train-sensor")(train_sensor)
