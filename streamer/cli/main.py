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
    "streamer.cli.keyword",  # train-keyword, eval-keyword, import-openwakeword
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
    argv = list(sys.argv[1:] if argv is None else argv)
    for area in AREAS:  # an area may rewrite forms typer cannot parse (serve's optional-value `--mic [DEVICE]`)
        normalize = getattr(sys.modules.get(area), "normalize_argv", None)
        if normalize is not None:
            argv = normalize(argv)
    try:
        # Standalone mode: typer reports usage errors itself (exit code 2) and exits with the command's code.
        app(args=argv, standalone_mode=True)
    except StreamerError as exc:
        log.error("%s", exc)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
