"""Audio input devices: listing, choosing by name or index, rate/channel negotiation, and PortAudio errors
turned into DeviceErrors that say what to install or pass."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from streamer.errors import DeviceError

INSTALL_PORTAUDIO = "install libportaudio2 (`apt-get install libportaudio2`, or `make setup`)"
NO_DEVICE_HINT = (
    "no audio input device: no sound server is running and no capture device is visible. Start one "
    "(`pulseaudio -D`, or PipeWire), connect a microphone, or run `streamer devices` to see what is there"
)
BUSY_PATTERNS = ("device unavailable", "device or resource busy", "resource busy", "-9985")


@dataclass(frozen=True)
class InputDevice:
    """One capture device as PortAudio sees it."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    default_sample_rate_hz: int
    is_default: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_sounddevice() -> ModuleType:
    """`import sounddevice`, with a DeviceError naming the package to install when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError("PortAudio library not found") at import
        raise DeviceError(f"cannot use audio devices: {exc}; {INSTALL_PORTAUDIO}") from exc
    return sounddevice


def explain(exc: Exception, device: str) -> DeviceError:
    """A PortAudio error while opening or querying `device`, as a DeviceError that says what to do."""
    text = str(exc)
    lowered = text.lower()
    if "error querying device -1" in lowered:
        return DeviceError(NO_DEVICE_HINT)
    if any(p in lowered for p in BUSY_PATTERNS):
        return DeviceError(
            f"audio device {device} is busy ({text}): another program holds it. Close that program, or choose "
            "another device (`streamer devices`; the `pulse` or `default` device can be shared)"
        )
    if "invalid sample rate" in lowered:
        return DeviceError(f"audio device {device} does not support that sample rate ({text})")
    if "invalid number of channels" in lowered:
        return DeviceError(f"audio device {device} does not support that channel count ({text})")
    return DeviceError(f"audio device {device}: {text}")


def list_input_devices() -> list[InputDevice]:
    """Every device that can capture, in PortAudio's order ([] when there is none)."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        host_apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise explain(exc, "list") from exc
    default_input = sd.default.device[0]
    found = []
    for index, info in enumerate(devices):
        if info["max_input_channels"] <= 0:
            continue
        found.append(
            InputDevice(
                index=index,
                name=info["name"],
                host_api=host_apis[info["hostapi"]]["name"],
                max_input_channels=int(info["max_input_channels"]),
                default_sample_rate_hz=round(info["default_samplerate"]),
                is_default=index == default_input,
            )
        )
    return found


def _listing(devices: list[InputDevice]) -> str:
    if not devices:
        return "there are no input devices"
    return "input devices: " + ", ".join(f"{d.index} {d.name!r}" for d in devices)


def resolve_device(device: str | int | None) -> InputDevice:
    """The input device named by index ("2" or 2), by name (exact, else a unique case-insensitive substring),
    or the system default (None); DeviceError listing what exists when nothing matches."""
    devices = list_input_devices()
    if device is None:
        defaults = [d for d in devices if d.is_default]
        if defaults:
            return defaults[0]
        if not devices:
            raise DeviceError(NO_DEVICE_HINT)
        raise DeviceError(f"there is no default input device; pass one by name or index ({_listing(devices)})")
    if isinstance(device, int) or re.fullmatch(r"\d+", device):
        matches = [d for d in devices if d.index == int(device)]
        if matches:
            return matches[0]
        raise DeviceError(f"no input device has index {device}; {_listing(devices)}")
    exact = [d for d in devices if d.name.lower() == device.lower()]
    partial = [d for d in devices if device.lower() in d.name.lower()]
    matches = exact or partial
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no input device matches {device!r}; {_listing(devices)}")
    raise DeviceError(f"{device!r} matches several input devices; pass one index: {_listing(matches)}")


def negotiate(
    device: InputDevice, sample_rate_hz: int | None, channels: int | None, preferred_rate_hz: int | None, dtype: str
) -> tuple[int, int]:
    """(rate, channels) the device accepts. An explicit rate or channel count must work as given; unset, the rate
    is `preferred_rate_hz` (the model's: no resampling) if the device takes it, else the device's default, and
    the channel count is 1 if possible, else the device's maximum (the frontend averages channels)."""
    sd = import_sounddevice()
    where = f"{device.index} {device.name!r}"

    def works(rate: int, count: int) -> bool:
        try:
            sd.check_input_settings(device=device.index, samplerate=rate, channels=count, dtype=dtype)
        except sd.PortAudioError:
            return False
        return True

    counts = [channels] if channels is not None else [1, device.max_input_channels]
    rates = [sample_rate_hz] if sample_rate_hz is not None else [preferred_rate_hz, device.default_sample_rate_hz]
    for count in counts:
        for rate in rates:
            if rate is not None and works(rate, count):
                return rate, count
    if channels is not None and not works(device.default_sample_rate_hz, channels):
        raise DeviceError(
            f"audio device {where} cannot capture {channels} channel(s); it has at most "
            f"{device.max_input_channels}: pass a smaller channel count"
        )
    tried = " or ".join(f"{rate} Hz" for rate in dict.fromkeys(r for r in rates if r is not None))
    raise DeviceError(
        f"audio device {where} does not support {tried}; its default rate is "
        f"{device.default_sample_rate_hz} Hz: pass that, or leave the rate unset (the frontend resamples)"
    )
