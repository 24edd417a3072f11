"""Device choice, negotiation and the DeviceErrors users meet: each says what to install or pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from streamer.errors import DeviceError
from streamer.sources.devices import explain, list_input_devices, negotiate, resolve_device
from streamer.sources.microphone import MicrophoneConfig, MicrophoneSource

pytestmark = pytest.mark.audio


def streamer_cli(*args: str, prelude: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nfrom streamer.cli.main import main\nmain({list(args)!r})"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_missing_portaudio_says_what_to_install():
    # The only way to lose the shared library without uninstalling it: make the lookup find nothing.
    run = streamer_cli("devices", prelude="import ctypes.util; ctypes.util.find_library = lambda name: None")
    assert run.returncode == 1, run.stderr
    assert "PortAudio library not found" in run.stderr and "install libportaudio2" in run.stderr


def test_no_sound_server_says_what_to_start():
    run = streamer_cli("devices", env={"PULSE_SERVER": "unix:/nonexistent/pulse/native"})
    if run.returncode == 0:
        pytest.skip("this machine has capture hardware besides the sound server: the no-device case cannot occur")
    assert run.returncode == 1
    assert "no sound server is running and no capture device is visible" in run.stderr
    assert "pulseaudio -D" in run.stderr


def test_devices_command_lists_the_virtual_microphone(virtual_mic):
    run = streamer_cli("devices", "--json")
    assert run.returncode == 0, run.stderr
    names = [json.loads(line)["name"] for line in run.stdout.splitlines()]
    assert "pulse" in names
    assert any(d.name == "pulse" for d in list_input_devices())


def test_device_by_index_and_name(virtual_mic):
    pulse = resolve_device("pulse")
    assert resolve_device(pulse.index) == resolve_device(str(pulse.index)) == resolve_device("PULS") == pulse
    assert resolve_device(None).is_default


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("no-such-mic", r"no input device matches 'no-such-mic'; input devices: \d+ 'pulse'"),
        (999, r"no input device has index 999; input devices: "),
        ("e", r"'e' matches several input devices; pass one index: .*'pulse'.*'default'"),
    ],
)
def test_no_matching_device_lists_what_exists(virtual_mic, device, message):
    with pytest.raises(DeviceError, match=message):
        MicrophoneSource(MicrophoneConfig(device=device)).start()


def test_unsupported_rate_and_channels_say_what_to_pass(virtual_mic):
    with pytest.raises(DeviceError, match=r"does not support 1000000 Hz; its default rate is 44100 Hz: pass that"):
        MicrophoneSource(MicrophoneConfig(device="pulse", sample_rate_hz=1_000_000)).start()
    with pytest.raises(DeviceError, match=r"cannot capture 64 channel\(s\); it has at most 32"):
        MicrophoneSource(MicrophoneConfig(device="pulse", channels=64)).start()


def test_negotiation_prefers_the_model_rate_and_mono(virtual_mic):
    pulse = resolve_device("pulse")
    assert negotiate(pulse, None, None, 16000, "int16") == (16000, 1)
    assert negotiate(pulse, None, None, None, "int16") == (pulse.default_sample_rate_hz, 1)
    assert negotiate(pulse, 8000, 2, 16000, "int16") == (8000, 2)


def test_portaudio_errors_become_advice():
    sd = pytest.importorskip("sounddevice", exc_type=OSError)
    busy = explain(sd.PortAudioError("Device unavailable", -9985), "0 'hw:1,0'")
    assert "device 0 'hw:1,0' is busy" in str(busy) and "another program holds it" in str(busy)
    none = explain(sd.PortAudioError("Error querying device -1"), "default")
    assert "no sound server is running" in str(none)
