"""CURVE authentication and encryption for the daemon's sockets (ZeroMQ's CurveZMQ with `zmq.auth`).

The daemon holds one server key pair; producers and subscribers each hold a client key pair, and the daemon allows
exactly the client public keys found in a directory. Keys are ZeroMQ certificate files as written by
`streamer keys generate` (`NAME.key` public, `NAME.key_secret` secret, mode 0600 in a 0700 directory).
The allowed-keys directory is re-read on `reload()` (the daemon calls it on SIGHUP).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from streamer.errors import ConfigError

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


def is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint is reachable only from this machine (loopback TCP, ipc, inproc)."""
    transport, _, address = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an interface name or wildcard (`*`, `eth0`): reachable from outside


def generate_keypair(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """Write NAME.key (public, 0644) and NAME.key_secret (secret, 0600) into `directory` (made 0700).
    Refuses to overwrite an existing pair."""
    folder = Path(directory)
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r}: expected a plain file name")
    public, secret = folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}"
    if public.exists() or secret.exists():
        raise ConfigError(f"key pair {folder / name}: already exists; remove it first to make a new one")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)  # the secret file is never readable by others, not even for an instant
    try:
        zmq.auth.create_certificates(str(folder), name)
    finally:
        os.umask(old_umask)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public, secret


def load_secret(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file; refuses a file others can read."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"secret key {path}: no such file (make one with `streamer keys generate`)")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secret key {path}: readable by group or others (mode {path.stat().st_mode & 0o777:o}); chmod 600 it"
        )
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise ConfigError(f"secret key {path}: holds no secret key (is it the public .key file?)")
    return public, secret


def load_public(path: str | os.PathLike[str]) -> bytes:
    """The public key of a NAME.key (or NAME.key_secret) file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"public key {path}: no such file")
    public, _ = zmq.auth.load_certificate(str(path))
    return public


def make_server(socket: zmq.Socket[bytes], secret_file: str | os.PathLike[str]) -> None:
    """Make `socket` a CURVE server with the daemon's key pair (before bind)."""
    public, secret = load_secret(secret_file)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True


def make_client(
    socket: zmq.Socket[bytes], secret_file: str | os.PathLike[str], server_public_file: str | os.PathLike[str]
) -> None:
    """Make `socket` a CURVE client of the daemon (before connect)."""
    public, secret = load_secret(secret_file)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = load_public(server_public_file)


@dataclass(frozen=True)
class ClientKeys:
    """A client's CURVE credentials: its own secret key file and the daemon's public key file."""

    secret_key: Path
    server_key: Path

    def apply(self, socket: zmq.Socket[bytes]) -> None:
        make_client(socket, self.secret_key, self.server_key)


class ClientAllowList:
    """ZAP handler thread that admits only the client public keys in `directory`; `reload()` re-reads it.

    ZeroMQ authenticates a connection once, at its handshake. So that a key removed from the directory stops
    working at once, the daemon also checks each received message's `User-Id` (the z85 client key that the ZAP
    handler stamped on the connection) against `allowed`, and rebinds its PUB socket when keys were removed.
    """

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(f"allowed client keys {self.directory}: no such directory")
        self.allowed: frozenset[str] = frozenset()
        self._auth = ThreadAuthenticator(context)
        self._auth.start()
        self.reload()

    def reload(self) -> frozenset[str]:
        """Re-read the allowed keys; returns the z85 keys that were allowed before and are not any more."""
        keys = zmq.auth.load_certificates(str(self.directory))
        allowed = frozenset(k.decode("ascii") if isinstance(k, bytes) else str(k) for k in keys)
        self._auth.configure_curve(domain="*", location=str(self.directory))
        removed, self.allowed = self.allowed - allowed, allowed
        return removed

    def admits(self, frame: zmq.Frame) -> bool:
        """Whether the connection a received frame came over still belongs to an allowed key."""
        return frame.get("User-Id") in self.allowed

    def stop(self) -> None:
        self._auth.stop()
