"""Announce a TCP service on the local network by mDNS / DNS-SD (the `zeroconf` package), so that Home Assistant
finds `streamer wyoming` by itself: its Wyoming integration browses `_wyoming._tcp.local.` and offers every service
it sees, instead of being given a host and port by hand.

Only what another host can reach is announced: a server bound to a loopback address or a unix socket cannot be
discovered usefully, so asking for that is a configuration error (exit code 2), said before anything starts.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any

from streamer.errors import ConfigError

log = logging.getLogger("streamer.daemon.mdns")

WYOMING_SERVICE = "_wyoming._tcp.local."
MDNS_GROUP = "224.0.0.251"  # the IPv4 mDNS group: the address this host uses towards it is its LAN side
MAX_NAME_BYTES = 63  # a DNS label


def default_name() -> str:
    """`streamer-HOSTNAME` (the first label of the host name), what Home Assistant shows for the discovered service."""
    return f"streamer-{socket.gethostname().split('.')[0]}"[:MAX_NAME_BYTES]


def lan_address() -> str:
    """The IPv4 address this host sends from towards the mDNS group (a UDP `connect` sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((MDNS_GROUP, 5353))
        except OSError as exc:
            raise ConfigError(f"zeroconf: no network interface reaches the mDNS group {MDNS_GROUP}: {exc}") from exc
        return str(probe.getsockname()[0])


def announced_address(uri: str) -> tuple[str, int]:
    """(IPv4 address, port) to announce for a server on `uri` (tcp://HOST:PORT): HOST itself, or for a wildcard bind
    (0.0.0.0) the LAN address. Loopback, IPv6-only and unix:// servers cannot be announced: ConfigError."""
    scheme, _, rest = uri.partition("://")
    host, _, port_text = rest.rpartition(":")
    if scheme != "tcp" or not host or not port_text.isdigit():
        raise ConfigError(f"zeroconf: --uri {uri!r} is not tcp://HOST:PORT; only a TCP server can be announced")
    if host in ("0.0.0.0", "*"):
        return lan_address(), int(port_text)
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host.strip("[]")))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"zeroconf: --uri {uri!r}: {host!r} is not an IPv4 address or host name ({exc})") from exc
    if address.is_loopback:
        raise ConfigError(
            f"zeroconf: --uri {uri!r} is reachable from this host only; bind tcp://0.0.0.0:{port_text} "
            "(or a LAN address) for Home Assistant on another host to connect"
        )
    return str(address), int(port_text)


def check_name(name: str) -> str:
    """A DNS-SD instance name: 1-63 bytes of UTF-8, no dots (they would split the name)."""
    if not name or len(name.encode()) > MAX_NAME_BYTES or "." in name:
        raise ConfigError(f"zeroconf: name {name!r} must be 1-{MAX_NAME_BYTES} bytes with no '.'")
    return name


@dataclass
class Announcement:
    """One service announced while a server runs: `await start()` once it listens, `await stop()` when it stops
    (stopping sends the goodbye packets, so browsers drop the service at once instead of after its TTL)."""

    name: str
    address: str
    port: int
    service_type: str = WYOMING_SERVICE
    _zeroconf: Any = None
    _info: Any = None

    async def start(self) -> str:
        """Announce; returns the name in use (` (2)` appended if another host already took the name)."""
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._info = AsyncServiceInfo(
            self.service_type,
            f"{self.name}.{self.service_type}",
            addresses=[socket.inet_aton(self.address)],
            port=self.port,
        )
        await self._zeroconf.async_register_service(self._info, allow_name_change=True)
        announced = self._info.name.removesuffix(f".{self.service_type}")
        log.info("zeroconf: announced %s as %r at %s:%d", self.service_type, announced, self.address, self.port)
        return str(announced)

    async def stop(self) -> None:
        if self._zeroconf is None:
            return
        try:  # the call returns the goodbye broadcasts' task: wait for them before closing the sockets
            await (await self._zeroconf.async_unregister_service(self._info))
        finally:
            await self._zeroconf.async_close()
            self._zeroconf = None
