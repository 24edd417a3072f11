"""sd_notify without libsystemd: READY=1, STATUS=, WATCHDOG=1, STOPPING=1 as datagrams to $NOTIFY_SOCKET.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon code never asks "am I under systemd?".
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Talks to the service manager; `watchdog()` is cheap to call from every loop turn (rate-limited)."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        enabled = watchdog_usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid()))
        # Ping at half the deadline, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s = int(watchdog_usec) / 2e6 if enabled else None
        self._last_watchdog_s = float("-inf")
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def notify(self, *fields: str) -> bool:
        """Send `KEY=value` lines in one datagram; False (logged once per failure) if it could not be sent."""
        if self._socket is None or self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._socket.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self, status: str = "draining") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self, now_s: float | None = None) -> None:
        """Ping the watchdog if it is enabled and half its interval has passed since the last ping."""
        if self.watchdog_interval_s is None:
            return
        now_s = time.monotonic() if now_s is None else now_s
        if now_s - self._last_watchdog_s >= self.watchdog_interval_s:
            self._last_watchdog_s = now_s
            self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
