"""`streamer wyoming --zeroconf` in a real process: a real mDNS browser (what Home Assistant runs) finds the service,
the announced address and port answer `describe`, SIGTERM withdraws it; settings that cannot be announced exit 2."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from beep_model import RATE_HZ, write_beep_rig
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from streamer.daemon.mdns import WYOMING_SERVICE, announced_address, check_name, lan_address
from streamer.errors import ConfigError


def _lan_or_skip() -> str:
    try:
        return lan_address()
    except ConfigError as exc:
        pytest.skip(f"no network interface for mDNS here: {exc}")


class Seen(ServiceListener):
    """Services of one name as a browser sees them come and go."""

    def __init__(self, name: str) -> None:
        self.name = f"{name}.{WYOMING_SERVICE}"
        self.added = threading.Event()
        self.removed = threading.Event()
        self.address: tuple[str, int] | None = None

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        if name == self.name:
            info = zc.get_service_info(type_, name, timeout=3000)
            assert info is not None and info.port is not None
            self.address = (info.parsed_addresses()[0], info.port)
            self.added.set()

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        if name == self.name:
            self.removed.set()


def test_home_assistant_discovers_the_service_and_sees_it_go(tmp_path: Path) -> None:
    lan = _lan_or_skip()
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(RATE_HZ * 5) * 10 ** (-70 / 20)).astype(np.float32)
    write_beep_rig(tmp_path, rng, quiet, 0.3, positives=1)
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = int(probe.getsockname()[1])
    name = f"streamer-test-{os.getpid()}"
    seen = Seen(name)
    browser_zc = Zeroconf(ip_version=IPVersion.V4Only)
    browser = ServiceBrowser(browser_zc, WYOMING_SERVICE, seen)
    command = [sys.executable, "-m", "streamer.cli.main", "wyoming", "--uri", f"tcp://0.0.0.0:{port}"]
    command += ["--model", str(tmp_path / "model.onnx"), "--zeroconf", "--zeroconf-name", name]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert seen.added.wait(60), "the service was never announced"
        assert seen.address == (lan, port)

        async def describe() -> Info:
            async with AsyncTcpClient(*seen.address) as client:  # type: ignore[misc]
                await client.write_event(Describe().event())
                while True:
                    event = await asyncio.wait_for(client.read_event(), 10)
                    assert event is not None
                    if Info.is_type(event.type):
                        return Info.from_event(event)

        info = asyncio.run(describe())
        assert [model.name for model in info.wake[0].models] == ["beep"]

        process.terminate()  # what systemd sends: the service says goodbye, browsers drop it at once
        assert process.wait(timeout=15) == 0
        assert seen.removed.wait(10), "the service was not withdrawn on SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()
        browser.cancel()
        browser_zc.close()
        output = process.communicate()[0].decode()
    assert f"announced {WYOMING_SERVICE} as '{name}' at {lan}:{port}" in output


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("tcp://127.0.0.1:10400", "reachable from this host only"),
        ("tcp://localhost:10400", "reachable from this host only"),
        ("unix:///tmp/wyoming.sock", "only a TCP server can be announced"),
        ("tcp://[::]:10400", "not an IPv4 address"),
    ],
)
def test_what_cannot_be_announced_is_a_configuration_error(uri: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        announced_address(uri)


def test_the_announced_address_of_a_wildcard_bind_is_the_lan_side() -> None:
    lan = _lan_or_skip()
    assert announced_address("tcp://0.0.0.0:10400") == (lan, 10400)
    assert announced_address(f"tcp://{lan}:10401") == (lan, 10401)
    assert check_name("kitchen satellite") == "kitchen satellite"
    for bad in ("", "a.b", "x" * 64):
        with pytest.raises(ConfigError, match="zeroconf: name"):
            check_name(bad)


def test_the_command_exits_2_before_loading_anything(tmp_path: Path) -> None:
    started_s = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streamer.cli.main", "wyoming", "--uri", "tcp://127.0.0.1:10400", "--zeroconf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "reachable from this host only" in done.stderr
    assert time.monotonic() - started_s < 30
