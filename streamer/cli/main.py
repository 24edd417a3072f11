"""The `streamer` command: builds the typer app from each area's module and maps errors to exit codes.

Exit codes (CONTRACT.md §4): 0 success, 2 bad configuration or arguments, 3 bad model, 1 anything else.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from streamer.errors import StreamerError

# Each module defines `register(app: typer.Typer) -> None`.
AREAS = (
    "streamer.cli.model",  # check, export
    "streamer.cli.bench",  # bench engine | frontend | daemon
    "streamer.cli.daemon",  # serve, feed, listen, config check
    "streamer.cli.audio",  # devices
    "streamer.cli.keyword",  # train-keyword, eval-keyword
    "streamer.cli.sensor",  # train-sensor
    "streamer.cli.keys",  # keys generate
)

log = logging.getLogger("streamer")


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="streamer",
        help="Stateful streaming inference for LSTM/GRU ONNX models over ZeroMQ.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for area in AREAS:
        try:
            module = importlib.import_module(area)
        except ModuleNotFoundError as exc:
            if exc.name != area:
                raise
            continue  # area not built in this checkout
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app()
    try:
        app(args=argv, standalone_mode=False)
    except StreamerError as exc:
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.BadParameter, typer.Abort) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
