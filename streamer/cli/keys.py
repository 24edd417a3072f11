"""`streamer keys generate`: CURVE key pairs for the daemon and its producers and subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

keys_app = typer.Typer(
    help="CURVE keys for authenticated, encrypted ingest and publish (docs/security.md).", no_args_is_help=True
)


@keys_app.command("generate")
def generate(
    name: Annotated[str, typer.Argument(help="key pair name, e.g. 'server' or 'mic-kitchen'")],
    directory: Annotated[Path, typer.Option("--dir", help="where to write NAME.key and NAME.key_secret")] = Path(
        "keys"
    ),
) -> None:
    """Write NAME.key (public, 0644) and NAME.key_secret (secret, 0600) into a 0700 directory."""
    from streamer.daemon.auth import generate_keypair

    public, secret = generate_keypair(directory, name)
    print(f"public key: {public}\nsecret key: {secret} (keep it private; copy only the .key file to the other side)")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
