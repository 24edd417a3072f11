"""Loaders for the real sensor data sets shipped inside PyPI wheels (seglearn watch, UEA BasicMotions).

The wheels are installed data-only by `scripts/install-sensor-data.sh`; their packages need pandas and are never
imported: the files are found with `importlib.util.find_spec` and read with numpy.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.errors import ConfigError

INSTALL_HINT = "install it with: bash scripts/install-sensor-data.sh"


@dataclass(frozen=True)
class SensorRecording:
    """One continuous recording: samples [frames, channels] float32 at `sample_rate_hz`, one class label."""

    samples: np.ndarray
    label: int
    subject: int
    sample_rate_hz: int


@dataclass(frozen=True)
class SensorDataset:
    """Recordings plus the names of their classes and channels (in the samples' column order)."""

    name: str
    recordings: list[SensorRecording]
    labels: list[str]
    channel_names: list[str]
    sample_rate_hz: int


def package_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"data package {package!r} is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_watch(path: Path | None = None) -> SensorDataset:
    """seglearn's smartwatch set (Burns et al. 2018): 140 recordings, 6 channels at 50 Hz, 7 exercises, 10 subjects."""
    file = path or package_dir("seglearn") / "data" / "watch_dataset.npy"
    if not file.is_file():
        raise ConfigError(f"watch data set not found at {file}; {INSTALL_HINT}")
    raw = np.load(file, allow_pickle=True).item()
    recordings = [
        SensorRecording(np.asarray(x, dtype=np.float32), int(y), int(s), 50)
        for x, y, s in zip(raw["X"], raw["y"], raw["subject"], strict=True)
    ]
    return SensorDataset("watch", recordings, list(raw["y_labels"]), list(raw["X_labels"]), 50)


BASICMOTIONS_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]


def parse_ts(text: str, source: str) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Parse the UEA `.ts` text format: cases [steps, channels], their labels, and the declared class names."""
    class_names: list[str] = []
    cases: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            lowered = line.lower()
            if lowered.startswith("@classlabel"):
                class_names = line.split()[2:]
            in_data = lowered == "@data"
            continue
        *channels, label = line.split(":")
        try:
            case = np.array([[float(v) for v in ch.split(",")] for ch in channels], dtype=np.float32)
        except ValueError as exc:
            raise ConfigError(f"{source}:{number}: not a .ts case line ({exc})") from exc
        cases.append(case.T)
        labels.append(label.strip())
    if not cases:
        raise ConfigError(f"{source}: no @data cases found")
    return cases, labels, class_names


def load_basicmotions(split: str, folder: Path | None = None) -> SensorDataset:
    """UEA BasicMotions, its published split ("train" or "test"): 40 cases × 100 steps × 6 channels at 10 Hz."""
    if split not in ("train", "test"):
        raise ConfigError(f"BasicMotions split {split!r}: expected 'train' or 'test'")
    base = folder or package_dir("aeon") / "datasets" / "data" / "BasicMotions"
    file = base / f"BasicMotions_{split.upper()}.ts"
    if not file.is_file():
        raise ConfigError(f"BasicMotions not found at {file}; {INSTALL_HINT}")
    cases, names, class_names = parse_ts(file.read_text(), str(file))
    index = {name: i for i, name in enumerate(class_names)}
    recordings = [SensorRecording(case, index[name], -1, 10) for case, name in zip(cases, names, strict=True)]
    return SensorDataset(f"basicmotions-{split}", recordings, class_names, BASICMOTIONS_CHANNELS, 10)
